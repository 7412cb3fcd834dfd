from .affinity_net import AffinityNet
from .cycsnet import CyCSNet

__all__ = ['AffinityNet', 'CyCSNet']
