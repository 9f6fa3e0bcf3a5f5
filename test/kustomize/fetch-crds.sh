#!/usr/bin/env bash
# Downloads the upstream CRDs the manifest tests install (Argo CD, Flux, Prometheus Operator) into DIR,
# byte for byte the files ../shared/crds holds on the project's machines (its README.md names them),
# each checked against its SHA-256. For the forge's CI, where ../shared does not exist:
#   test/kustomize/fetch-crds.sh DIR && export KUBE_ECRLOGIN_CRD_DIR=DIR
set -euo pipefail

dir=${1:?usage: $0 DIR}
mkdir -p "$dir"

# file  repository  commit  path  sha256
while read -r file repo commit path sum; do
  curl -fsSL --retry 3 -o "$dir/$file" "https://raw.githubusercontent.com/$repo/$commit/$path"
  echo "$sum  $dir/$file" | sha256sum --check --quiet
done <<'LIST'
argocd-applications.yaml argoproj/argo-cd 37ee0097cf851bc2dd7665fc081bbce61a7e836e manifests/crds/application-crd.yaml 9fd0da3e7097ad6d1af614fabd5c960bc7ddb00d768c3ef485a2fda6e9460df8
argocd-appprojects.yaml argoproj/argo-cd 37ee0097cf851bc2dd7665fc081bbce61a7e836e manifests/crds/appproject-crd.yaml ab225266944322750136f1198d93786e4a79a0e43c8d149abfba44da30a3eac8
flux-kustomizations.yaml fluxcd/kustomize-controller 1586c4d0404f4f8da3a78ec3275b89b0336f6e68 config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml da23ca0e6b4c80d3d26a91583137491e147ef4ef1e2208aece0d0af4ef851974
flux-gitrepositories.yaml fluxcd/source-controller 5702b62f8f56656aadd8ee4520c1859ace27b20f config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml bd0c08183287b2eea0d885751fc686bc4b2b583e919de6bd57859170b8d1727f
flux-ocirepositories.yaml fluxcd/source-controller 5702b62f8f56656aadd8ee4520c1859ace27b20f config/crd/bases/source.toolkit.fluxcd.io_ocirepositories.yaml 80c7c6e5c8de0764cc83acd4de5c74bea8e51186085304d22cecc5f2eb35500e
prometheus-operator-servicemonitors.yaml prometheus-operator/prometheus-operator f8fafd475f3d132e239432ae6172de60a6cb6516 example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32
prometheus-operator-podmonitors.yaml prometheus-operator/prometheus-operator f8fafd475f3d132e239432ae6172de60a6cb6516 example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml 45a93443daa687d3654f7e9631909ff7edcdf3ec09c5e60251b74aa2722aee5d
prometheus-operator-prometheusrules.yaml prometheus-operator/prometheus-operator f8fafd475f3d132e239432ae6172de60a6cb6516 example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml 78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d
LIST
echo "$dir"
