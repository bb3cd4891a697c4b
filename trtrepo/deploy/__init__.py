"""Deployment manifests for a published repository: ``trtrepo deploy k8s`` (:mod:`trtrepo.deploy.k8s`)."""

from __future__ import annotations

from trtrepo.deploy.k8s import DeployError, K8sDeployment, deploy_k8s, render_k8s

__all__ = ["DeployError", "K8sDeployment", "deploy_k8s", "render_k8s"]
