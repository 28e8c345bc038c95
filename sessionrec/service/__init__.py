"""``sessionrec serve``: an HTTP service over :class:`sessionrec.SessionRecommender`,
torch-free (numpy, onnxruntime, FastAPI, uvicorn, prometheus-client: ``pip install
'sessionrec[serve]'``).

- :mod:`~sessionrec.service.app`: the endpoints, errors and metrics;
- :mod:`~sessionrec.service.batching`: sessions of concurrent requests scored in one
  onnxruntime call;
- :mod:`~sessionrec.service.reload`: the model follows its directory, verified before
  the swap.

The endpoints, their errors and the load test's figures are in ``export/README.md``
("HTTP: `sessionrec serve`").
"""
