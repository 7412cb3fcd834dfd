# Copyright (c) mmcyc contributors. All rights reserved.
"""Build a CyCSNet with one of its two feature sets, for stages 3 and the
diagnostics (refinement, correspondence, similarity maps, Eq. 14 trace)."""
import argparse
import copy
from typing import Optional, Union

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from mmcyc.utils.state_dict_check import check_state_dict, unwrap_state_dict


def cycsnet_weights(checkpoint: str,
                    init_from_classifier: Optional[str] = None) -> dict:
    """The tools' weights arguments as ``load_cycsnet`` keyword arguments.

    Args:
        checkpoint (str): A trained CyCSNet checkpoint, or ``'-'`` with
            ``init_from_classifier``.
        init_from_classifier (str, optional): A stage-1 classifier
            checkpoint: F before stage 2.

    Returns:
        dict: ``checkpoint=...`` or ``classifier_checkpoint=...``.

    Raises:
        ValueError: Unless exactly one of the two is given.
    """
    if (checkpoint == '-') != bool(init_from_classifier):
        raise ValueError("give a CyCSNet CHECKPOINT, or '-' with "
                         '--init-from-classifier CAM_CKPT')
    if init_from_classifier:
        return dict(classifier_checkpoint=init_from_classifier)
    return dict(checkpoint=checkpoint)


def load_cycsnet(model_cfg: dict,
                 checkpoint: Optional[str] = None,
                 classifier_checkpoint: Optional[str] = None,
                 device: Union[str, torch.device] = 'cpu') -> nn.Module:
    """Build a CyCSNet in eval mode with one of its two feature sets.

    Exactly one of the checkpoints is given:

    - ``checkpoint``: a trained CyCSNet (``"cyc"`` features). Its keys must
      match the model exactly (C's weights are in it too, so C's own file
      named by ``cam_classifier_checkpoint`` is not read);
    - ``classifier_checkpoint``: a stage-1 classifier; the model is built
      with ``cam_classifier_checkpoint`` set to it and
      ``init_from_classifier=True``, and its ``init_weights()`` reads it
      (building reads no file), so F is the classifier's backbone through
      b6, F's initialisation before stage 2 (``"cls"`` features).

    mmseg's default scope must be set and ``mmcyc`` imported (registries).

    Args:
        model_cfg (dict): The CyCSNet ``model`` config.
        checkpoint (str, optional): Trained CyCSNet weights.
        classifier_checkpoint (str, optional): Stage-1 classifier weights.
        device (str | torch.device): Defaults to 'cpu'.

    Returns:
        nn.Module: The model on ``device``, in eval mode.

    Raises:
        ValueError: Naming the checkpoint when its keys do not match.
    """
    if (checkpoint is None) == (classifier_checkpoint is None):
        raise ValueError('give exactly one of checkpoint (a trained CyCSNet) '
                         'and classifier_checkpoint (the stage-1 classifier)')
    model_cfg = copy.deepcopy(dict(model_cfg))
    model_cfg['cam_classifier_checkpoint'] = classifier_checkpoint
    if classifier_checkpoint is not None:
        model_cfg['init_from_classifier'] = True
        model = MODELS.build(model_cfg)
        model.init_weights()  # reads C and F from the classifier checkpoint
        return model.to(device).eval()
    model = MODELS.build(model_cfg)
    loaded = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state_dict = unwrap_state_dict(loaded, checkpoint)
    check_state_dict(model, state_dict, f'checkpoint {checkpoint}')
    model.load_state_dict(state_dict, strict=False)
    return model.to(device).eval()


def add_cycsnet_weight_args(parser: argparse.ArgumentParser,
                            classifier_help: str) -> None:
    """Add the arguments every CyCSNet tool shares to ``parser``.

    ``config``, ``checkpoint`` (a trained CyCSNet, or ``-``),
    ``--init-from-classifier CAM_CKPT`` and ``--cam-dir``; after
    ``parse_args`` call :func:`parsed_cycsnet_weights`.

    Args:
        parser (ArgumentParser): The tool's parser.
        classifier_help (str): What ``--init-from-classifier`` does in this
            tool.
    """
    parser.add_argument('config', help='CyCSNet config file')
    parser.add_argument(
        'checkpoint',
        help="trained CyCSNet checkpoint, or '-' with --init-from-classifier")
    parser.add_argument('--init-from-classifier', metavar='CAM_CKPT',
                        help=classifier_help)
    parser.add_argument('--cam-dir', required=True,
                        help='stage-1 CAMs (one <name>.npz per image)')


def parsed_cycsnet_weights(parser: argparse.ArgumentParser,
                           args: argparse.Namespace) -> dict:
    """``load_cycsnet``'s weight arguments from parsed arguments.

    Exits through ``parser.error`` unless exactly one of CHECKPOINT and
    ``--init-from-classifier`` is given.
    """
    try:
        return cycsnet_weights(args.checkpoint, args.init_from_classifier)
    except ValueError as error:
        parser.error(str(error))
