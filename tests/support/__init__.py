"""Reusable test support: a real JupyterLab server and a real Chromium
(``support.jupyter``). Importable from any test module, since pytest puts
``tests/`` on ``sys.path``."""
