"""Install mmcyc: CyCSNet weakly-supervised semantic segmentation on OpenMMLab.

The OpenMMLab stack has to be installed in a fixed order (torch first, mmcv built from
source against it), which pip's resolver cannot express; ``tools/install.sh`` does it.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name):
    """Return the requirement lines of ``requirements/<name>.txt``."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'requirements', name)
    with open(path) as f:
        return [
            line.split('#')[0].strip() for line in f
            if line.split('#')[0].strip()
        ]


def read_version():
    namespace = {}
    with open(osp.join('mmcyc', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='mmcyc',
    version=read_version(),
    description='CyCSNet weakly-supervised semantic segmentation on OpenMMLab',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks')),
    python_requires='>=3.8',
    install_requires=[
        r for r in read_requirements('build.txt') + read_requirements('mmcv.txt') +
        read_requirements('runtime.txt')
        if not r.startswith(('wheel', 'ninja', 'setuptools'))
    ],
    extras_require=dict(
        tests=read_requirements('tests.txt'),
        crf=read_requirements('optional.txt')),
    zip_safe=False,
)
