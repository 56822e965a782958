"""The entry scripts SageMaker runs: the one folder of them, inside the package.

`train.py` and `hpo.py` are the training-container scripts (`dogclf.sagemaker.staging` copies them into each
job's source_dir, next to a copy of dogclf); `inference.py` is `code/inference.py` of every model.tar.gz.
Each is a few lines calling the library directly (`dogclf.sagemaker.training.main`, `dogclf.serve.handlers`).

They live here so that a wheel ships them as package files and an editable install, a clone and a wheel
install all use the same files with no build-time path mapping; the repo's top-level `entrypoints/*.py` are
symbolic links to these files (one definition, the layout users expect). `dogclf.entry_scripts` finds
them as package files, so the layers that ship them never import the scripts. Run one locally with
`python entrypoints/train.py --data DIR --output-data-dir RUN` or `python -m dogclf.entrypoints.train ...`.
"""
