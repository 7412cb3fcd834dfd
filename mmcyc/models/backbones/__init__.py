# Copyright (c) mmcyc contributors. All rights reserved.
from .resnet38 import ResNet38
from .vgg16d import VGG16d

__all__ = ['ResNet38', 'VGG16d']
