"""AWS building blocks several capabilities share: IAM (IRSA and service roles, trust policies),
S3 buckets, Application Auto Scaling policies, the EKS node launch template. They import no
capability; the EKS, SageMaker and S3 backends live in the capability folders."""
