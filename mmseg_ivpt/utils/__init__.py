from .integrity import (
                        CheckpointFileError,
                        CorruptCheckpointError,
                        add_checksum,
                        encoder_fingerprint,
                        tensor_checksum,
)
from .safe_load import (
                        UnsafeCheckpointError,
                        install_mmengine_loader,
                        load_checkpoint_file,
                        safe_torch_load,
)

__all__ = ['CheckpointFileError', 'CorruptCheckpointError',
           'UnsafeCheckpointError', 'add_checksum', 'encoder_fingerprint',
           'install_mmengine_loader', 'load_checkpoint_file',
           'safe_torch_load', 'tensor_checksum']
