"""Package ``hybridrec`` from lib/ with the ``hybridrec`` console script.

Exact versions live in constraints.txt (``make setup`` installs under it); the ranges here are what
the code needs. Horovod is built from source against the installed TensorFlow by ``make setup``
and is therefore not listed: pip would try to compile it without the right build flags.
"""
from pathlib import Path

from setuptools import find_packages, setup

ns: dict = {}
exec((Path(__file__).parent / "lib" / "hybridrec" / "__init__.py").read_text(), ns)

setup(
    name="hybridrec",
    version=ns["__version__"],
    description="Distributed Spark batch recommender: CNN/LSTM content embeddings + ALS, to Delta",
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    install_requires=[
        "pyspark>=4.0,<4.1",
        "delta-spark>=4.0,<4.1",
        "petastorm>=0.13,<0.14",
        "pyarrow>=14,<15",
        "pandas>=2.2,<3",
        "numpy>=1.26,<2",
        "pillow>=10",
        "pyyaml>=6",
        "cloudpickle",
        "psutil",
        "h5py",
        "fsspec",
        "packaging",
    ],
    extras_require={
        # tensorflow-cpu locally; GPU clusters (Databricks ML runtime) bring their own TensorFlow.
        "cpu": ["tensorflow-cpu>=2.15,<2.16"],
        "test": ["pytest>=8", "chispa>=0.10"],
    },
    entry_points={"console_scripts": ["hybridrec=hybridrec.cli:main"]},
)
