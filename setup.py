"""Package ``hybridrec`` from lib/ with the ``hybridrec`` console script.

Exact versions live in constraints.txt (``make setup`` installs under it). ``install_requires`` lists
only what a Spark runtime does not bring: the wheel is also installed on Databricks clusters (the
bundle's ``libraries: whl``), whose ML runtime provides Spark, Delta, TensorFlow, Horovod, pandas,
numpy, pyarrow and Petastorm; pip must not replace those there (a pyspark wheel would shadow the
cluster's Spark). Locally ``make setup`` installs them pinned (requirements.txt), or use the
``spark`` and ``cpu`` extras. Horovod is built from source against the installed TensorFlow by
``make setup`` and is therefore not listed: pip would try to compile it without the right flags.
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
        # lower bounds the Databricks ML runtime of the bundle (15.4 LTS ML) already satisfies
        "pyyaml>=6",
        "pillow>=9",
        "numpy>=1.23,<2",
        "pandas>=1.5",
        "pyarrow>=14",
        "packaging",
    ],
    extras_require={
        # A plain Python environment (what `make setup` pins): Spark, Delta and Petastorm.
        "spark": [
            "pyspark>=4.0,<4.1",
            "delta-spark>=4.0,<4.1",
            "petastorm>=0.12,<0.14",
            "cloudpickle",
            "psutil",
            "h5py",
            "fsspec",
        ],
        # tensorflow-cpu locally; GPU clusters (Databricks ML runtime) bring their own TensorFlow.
        "cpu": ["tensorflow-cpu>=2.15,<2.16"],
        "test": ["pytest>=8", "chispa>=0.10"],
    },
    entry_points={"console_scripts": ["hybridrec=hybridrec.cli:main"]},
)
