"""The user's inference API (needs mmengine): the prompt bank that serves
many tasks on one frozen ViT, the JSON form of its predictions, and a model
of either toolbox from a config and a checkpoint."""
from .bank import BankError, PromptBank
from .inference import load_model, scope_of
from .prediction import TaskInfo, label_mask, mask_png, prediction_json

__all__ = ['BankError', 'PromptBank', 'TaskInfo', 'label_mask', 'load_model',
           'mask_png', 'prediction_json', 'scope_of']
