"""Installs the framework core ``nmod`` and the NLP collection ``nmod_nlp``.

``nmod_nlp`` lives in ``collections/nmod_nlp`` on disk; it is mapped to its import name here so
that no importable package called ``collections`` ever shadows the standard library.
"""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
exec((here / "nmod" / "version.py").read_text(), version)


def read_requirements(name: str) -> list[str]:
    lines = (here / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


nlp_packages = find_packages("collections")
setup(
    name="nmod",
    version=version["__version__"],
    description="Fine-tune Megatron-LM and BERT encoders by composing typed neural modules",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["nmod", "nmod.*"]) + nlp_packages,
    package_dir={name: "collections/" + name.replace(".", "/") for name in nlp_packages},
    package_data={"nmod_nlp": ["data/squad/samples/*.json", "data/glue/samples/*/*.tsv",
                               "data/text_classification/samples/*.tsv", "data/token_classification/samples/*.txt",
                               "data/punctuation_capitalization/samples/*.txt",
                               "data/intent_slot/samples/*.tsv", "data/intent_slot/samples/*.csv"]},
    install_requires=read_requirements("requirements.txt"),
    extras_require={"test": read_requirements("requirements-test.txt"), "tensorboard": ["tensorboard"],
                    "plots": ["matplotlib"],
                    # nf.deployment_export(..., DeploymentFormat.ONNX): torch's TorchScript-based ONNX exporter.
                    "export": ["onnx>=1.15"],
                    # the predictors' runtime="onnxruntime" (--runtime onnxruntime): export, then serve.
                    "onnxruntime": ["onnx>=1.15", "onnxruntime>=1.17"]},
)
