"""Callbacks for NLP tasks."""
from .squad import squad_evaluator_callback

__all__ = ["squad_evaluator_callback"]
