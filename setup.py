"""keras-motivation: motivated dual-model training for Keras 3 (Acheli & Gaaloul, 2026)."""

import setuptools

setuptools.setup(
    name="keras-motivation",
    version="0.1.0",
    description=(
        "Motivated dual-model training: a base model and a bigger model that "
        "contains it, trained in alternation, in one keras.Model.fit run."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
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
        "dev": ["pytest>=8", "pytest-xdist>=3"],
    },
    entry_points={
        "console_scripts": [
            "keras-motivation-train=keras_motivation.train:cli",
        ]
    },
)
