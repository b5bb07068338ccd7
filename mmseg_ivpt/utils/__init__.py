from .safe_load import (UnsafeCheckpointError, install_mmengine_loader,
                        safe_torch_load)

__all__ = ['UnsafeCheckpointError', 'install_mmengine_loader',
           'safe_torch_load']
