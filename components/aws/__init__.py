"""AWS implementations (EKS, Karpenter, S3, SageMaker)."""
