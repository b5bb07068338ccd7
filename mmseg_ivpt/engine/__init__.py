from .hooks import PromptOnlyCheckpointHook
from .optim import PromptOptimWrapperConstructor, method_parameters

__all__ = ['PromptOnlyCheckpointHook', 'PromptOptimWrapperConstructor',
           'method_parameters']
