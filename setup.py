import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def requirements(name):
    with open(os.path.join(HERE, 'requirements', name)) as f:
        return [line.split('#')[0].strip() for line in f
                if line.split('#')[0].strip()]


version = {}
with open(os.path.join(HERE, 'mmseg_ivpt', 'version.py')) as f:
    exec(f.read(), version)

setup(
    name='mmseg_ivpt',
    version=version['__version__'],
    description='Visual prompt tuning (iVPT, VPT, ProVP, GaPT) of frozen '
    'ViTs for mmsegmentation and mmpretrain',
    packages=find_packages(include=['mmseg_ivpt', 'mmseg_ivpt.*']),
    license='Apache License 2.0',
    python_requires='>=3.9',
    install_requires=requirements('runtime.txt'),
    extras_require=dict(mm=requirements('mminstall.txt'),
                        tests=requirements('tests.txt'),
                        serve=requirements('serve.txt')),
)
