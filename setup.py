"""keras-motivation: motivated dual-model training for Keras 3 (Acheli & Gaaloul, 2026)."""

import pathlib
import re

import setuptools

HERE = pathlib.Path(__file__).parent
# The version is written once, in keras_motivation/version.py; read as text so
# that set-up does not import TensorFlow.
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "keras_motivation" / "version.py").read_text()).group(1)

setuptools.setup(
    name="keras-motivation",
    version=VERSION,
    description=(
        "Motivated dual-model training: a base model and a bigger model that "
        "contains it, trained in alternation, in one keras.Model.fit run."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["keras_motivation", "keras_motivation.*"]),
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.15,<4",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets 4.9.10 imports it to download and prepare a
        # dataset (DatasetBuilder.url_infos) but does not declare it.
        "importlib_resources",
        "absl-py>=2",
        "numpy>=2",
        "tensorboard>=2.21",
        "matplotlib>=3.8",
    ],
    # TensorFlow comes through an extra so that a GPU host never gets both
    # wheels: `.[cpu]` for laptops and CI, `.[gpu]` on CUDA hosts.
    extras_require={
        "cpu": ["tensorflow-cpu==2.21.*"],
        "gpu": ["tensorflow[and-cuda]==2.21.*"],
        # pytest 9.2 breaks pytest-xdist's --dist loadgroup (pytest-xdist#1386): grouped tests, which share one
        # expensive fixture, would run on both workers and pay for it twice.
        # mkdocs builds the documentation site (docs/, mkdocs.yml) in ./test.sh: material's theme, and the API
        # reference from the docstrings through mkdocstrings' Python handler.
        "dev": [
            "pytest>=8,<9.2",
            "pytest-xdist>=3",
            "ruff==0.17.*",
            "mkdocs>=1.6,<2",
            "mkdocs-material>=9.5,<10",
            "mkdocstrings[python]>=1,<2",
        ],
        # keras-hub's own requirements but tensorflow-text, which requires the
        # full `tensorflow` wheel and so would install it beside tensorflow-cpu
        # (into the same package directory); the image models never import it.
        # keras-hub itself then goes in without dependencies:
        # tools/setup_venv.sh runs `pip install --no-deps "keras-hub==0.32.*"`.
        "hub": [
            "regex",
            "rich",
            "packaging",
            "kagglehub!=1.0.1",
            "kagglesdk==0.1.28",
            "sentencepiece",
            "tokenizers",
        ],
    },
    entry_points={
        "console_scripts": [
            "keras-motivation-train=keras_motivation.train:cli",
        ]
    },
)
