"""Checks on checkpoints saved under mmengine's ``EMAHook``."""
import torch


def assert_batchnorm_statistics_averaged(checkpoint: dict) -> None:
    """Assert that a checkpoint's BatchNorm statistics are the averaged ones.

    ``EMAHook`` saves the averaged model as ``state_dict`` and, by swapping,
    leaves the live net's tensors in ``ema_state_dict`` (keys prefixed with
    ``module.``). With ``update_buffers=True`` the running statistics are
    averaged too and so differ from the live net's; with mmengine's default
    they are copied from it and are equal.

    Args:
        checkpoint (dict): A loaded checkpoint with ``state_dict`` and
            ``ema_state_dict``.
    """
    stats = [k for k in checkpoint['state_dict']
             if k.endswith(('running_mean', 'running_var'))]
    assert stats, 'no BatchNorm running statistics in the checkpoint'
    for key in stats:
        live = checkpoint['ema_state_dict']['module.' + key]
        assert not torch.equal(checkpoint['state_dict'][key], live), key
