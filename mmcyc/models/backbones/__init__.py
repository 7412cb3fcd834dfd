# Copyright (c) mmcyc contributors. All rights reserved.
from .resnet38 import ResNet38

__all__ = ['ResNet38']
