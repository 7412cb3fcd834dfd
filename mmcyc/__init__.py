# Copyright (c) mmcyc contributors. All rights reserved.
"""mmcyc: CyCSNet weakly-supervised semantic segmentation on OpenMMLab.

Importing the package registers every component in MMSegmentation's
registries (``mmseg.registry.MODELS``, ``DATASETS``, ``TRANSFORMS``,
``HOOKS``, ``METRICS``), so configs load it with
``custom_imports=dict(imports=['mmcyc'], allow_failed_imports=False)``.
"""
from .version import __version__
from . import (datasets, engine, evaluation, fileio,  # noqa: F401,E402
               models, utils, visualization)

__all__ = ['__version__']
