"""SageMaker integration: the training-container contract (SDK-free) and job builders (`jobs`, needs the SDK).

`dogclf.sagemaker.environment` and `dogclf.sagemaker.training` run inside the container and never import the
SageMaker SDK, nor does `dogclf.sagemaker.bundle` (the code folder shipped with jobs and models);
`dogclf.sagemaker.jobs` holds every SDK call and is imported only when a job is built.
"""
