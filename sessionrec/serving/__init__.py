"""What :class:`sessionrec.recommender.SessionRecommender` serves with, torch-free
(numpy and onnxruntime; faiss for two-stage serving, installed by ``sessionrec[ann]``):

- :mod:`~sessionrec.serving.files`: the files of an export (the ONNX file, its data
  file, the two-stage files), their names, formats and verification;
- :mod:`~sessionrec.serving.two_stage`: two-stage serving of large catalogs (the session
  vector, candidates from an approximate nearest-neighbour index, exact re-scoring).
"""
