"""Adapters to distributed engines. Each module imports its engine lazily."""
