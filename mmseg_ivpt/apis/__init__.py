"""The user's inference API (needs mmengine): the prompt bank that serves
many tasks on one frozen ViT, and a model of either toolbox from a config
and a checkpoint."""
from .bank import BankError, PromptBank
from .inference import load_model, scope_of

__all__ = ['BankError', 'PromptBank', 'load_model', 'scope_of']
