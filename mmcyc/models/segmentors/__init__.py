from .cycsnet import CyCSNet

__all__ = ['CyCSNet']
