from .cam_refiner import CAMRefiner
from .feature_bank import FeatureBank

__all__ = ['CAMRefiner', 'FeatureBank']
