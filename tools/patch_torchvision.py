# Copyright (c) mmcyc contributors. All rights reserved.
"""Let torchvision's Python parts import next to a CPU-only torch.

The package registry only has a CUDA build of torchvision 0.28. With the CPU
torch its C++ ops do not load, and ``import torchvision`` then fails with
``operator torchvision::nms does not exist``, raised by two unconditional
``@torch.library.register_fake`` decorators in
``torchvision/_meta_registrations.py``. This script makes those two
registrations conditional on ``torchvision.extension._has_ops()``, which is
what the rest of that file already does. mmpretrain imports torchvision
(boxes, transforms); its C++ ops stay unavailable (mmcv.ops has CPU
kernels). Idempotent; does nothing when the ops load (e.g. a CUDA machine
with a matching torch/torchvision pair).
"""
import importlib.util
import os.path as osp
import sys

OPS = ('torchvision::nms', 'torchvision::qnms')
GUARD = ('if torchvision.extension._has_ops() '
         'else (lambda fn: fn))')


def main() -> int:
    spec = importlib.util.find_spec('torchvision')
    if spec is None:
        print('torchvision is not installed; nothing to patch')
        return 0
    path = osp.join(osp.dirname(spec.origin), '_meta_registrations.py')
    with open(path) as f:
        source = f.read()
    patched = source
    for op in OPS:
        plain = f'@torch.library.register_fake("{op}")\n'
        guarded = f'@(torch.library.register_fake("{op}") {GUARD}\n'
        patched = patched.replace(plain, guarded)
    if patched == source:
        if GUARD in source:
            print(f'{path}: already patched')
            return 0
        print(f'{path}: no register_fake of {OPS} found; unknown torchvision')
        return 1
    with open(path, 'w') as f:
        f.write(patched)
    print(f'{path}: fake-op registrations of {", ".join(OPS)} made '
          'conditional on torchvision.extension._has_ops()')
    return 0


if __name__ == '__main__':
    sys.exit(main())
