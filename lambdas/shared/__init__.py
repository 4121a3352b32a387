"""Code shared by the Lambda functions (configuration, event validation, notification, idempotency).

Import convention: inside a deployed Lambda asset the package root is the function's own folder,
with this folder copied next to the handler. Handlers therefore import it as the top-level package
``shared`` (``from shared import config``), never as ``lambdas.shared``. Modules in here import
each other relatively so they work under either name. Tests put ``lambdas/`` on ``sys.path``
(tests/lambdas/conftest.py) so ``shared`` and ``<function>.handler`` resolve the same way as in Lambda.
For mypy, which only knows ``lambdas.shared``, handlers import it under ``TYPE_CHECKING``.
"""
