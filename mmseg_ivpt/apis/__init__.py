"""Helpers behind tools/ (need mmengine)."""
from .launch import (ConfigError, add_common_args, build_runner, check_data,
                     check_model, load_config, prepare, setup_cpu_distributed)

__all__ = ['ConfigError', 'add_common_args', 'build_runner', 'check_data',
           'check_model', 'load_config', 'prepare', 'setup_cpu_distributed']
