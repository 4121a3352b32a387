"""Step scripts of the model-build pipeline (see ../README.md for their interface).

Each module runs inside a SageMaker framework container as a plain script (its folder
on ``sys.path``) and imports here as a package for tests and local runs. They use the
standard library, numpy, pandas (1.5 and later), scikit-learn and xgboost only, plus
pyarrow to read Parquet, and avoid syntax newer than Python 3.9 since a container's
interpreter can be older than the project's.
"""
