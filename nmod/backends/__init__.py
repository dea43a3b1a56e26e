"""Backends execute module graphs. PyTorch is the one implementation."""
