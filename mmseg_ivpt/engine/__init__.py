from .hooks import PromptOnlyCheckpointHook

__all__ = ['PromptOnlyCheckpointHook']
