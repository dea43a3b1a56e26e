"""One logger tree for nmod and its collections, so the handler the factory sets up shows every line.

``get_logger(__name__)`` in any module: ``nmod.backends.pytorch.actions`` stays as it is,
``nmod_nlp.data.glue.features`` becomes ``nmod.nlp.data.glue.features``. Every logger is then a
child of ``"nmod"``, which the factory gives its handlers (stdout, and ``nmod.log`` in the run
folder), one format for all; a user silences or raises all of them at ``logging.getLogger("nmod")``.
"""
from __future__ import annotations

import logging

__all__ = ["ROOT", "get_logger"]

ROOT = "nmod"


def get_logger(module_name: str) -> logging.Logger:
    if module_name == ROOT or module_name.startswith(ROOT + "."):
        return logging.getLogger(module_name)
    if module_name.startswith(ROOT + "_"):  # a collection: nmod_nlp -> nmod.nlp
        return logging.getLogger(f"{ROOT}.{module_name[len(ROOT) + 1:]}")
    return logging.getLogger(f"{ROOT}.{module_name}")
