/*
Copyright 2026 The talkover-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/talkover/talkover-operator/test/utils"
)

// restrictedNamespace enforces the restricted Pod Security Standard.
const restrictedNamespace = "pod-security-restricted"

// restrictedViolation starts the message of the PodSecurity admission
// plugin when it rejects a Pod of restrictedNamespace.
const restrictedViolation = `violates PodSecurity "restricted:latest"`

// TestPodSecurity proves that the manager Pod of the Helm chart (for its
// defaults and each ci/*-values.yaml) and of the kustomize installer
// (config/default) passes the restricted Pod Security Standard, as the
// kube-apiserver's PodSecurity admission plugin enforces it. The plugin
// only warns about a Deployment, so the test makes a Pod of each rendered
// Deployment's pod template and creates it, with a server-side dry-run, in
// a namespace that enforces restricted. Copies with a weakened
// securityContext must be rejected there: that shows the namespace does
// enforce the policy, and so that the test can fail.
//
// It needs no manager and no simulator, so it starts a control plane of
// its own rather than the whole suite of TestOperator.
func TestPodSecurity(t *testing.T) {
	g := NewWithT(t)
	root, err := utils.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	// A suite of the repository and kubectl only, to render the manifests.
	s := &suite{t: t, root: root, assets: utils.AssetsDir(root)}
	skipWithoutAssets(t, s.assets)
	if err := utils.CheckAssets(s.assets); err != nil {
		t.Fatalf("the local control plane is not built: %v", err)
	}
	s.kubectl = filepath.Join(s.assets, "kubectl")
	renders := s.renderManagers(t)

	env := &envtest.Environment{BinaryAssetsDirectory: s.assets, ControlPlaneStartTimeout: time.Minute}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting the local control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	// envtest's kube-apiserver runs the PodSecurity admission plugin (it is
	// on by default) but not the ServiceAccount one, so the Pods' missing
	// ServiceAccounts do not matter.
	g.Expect(c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: restrictedNamespace,
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
		},
	}})).To(Succeed())

	names := make([]string, 0, len(renders))
	for name := range renders {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) { testRestricted(t, c, renders[name]) })
	}
}

// renderManagers renders the Helm chart for its defaults and each
// ci/*-values.yaml, and the kustomize installer, and returns the output of
// each by a name for the subtest.
func (s *suite) renderManagers(t *testing.T) map[string][]byte {
	t.Helper()
	chart := filepath.Join(s.root, "dist", "chart")
	helm := filepath.Join(s.root, "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("bin/helm is missing: run 'make helm'")
	}
	valueFiles, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	if err != nil || len(valueFiles) == 0 {
		t.Fatalf("no values files in dist/chart/ci (%v)", err)
	}
	renders := map[string][]byte{}
	renders["chart defaults"] = s.run(t, commandTimeout, helm, "template", releaseName, chart, "--namespace", releaseNamespace)
	for _, f := range valueFiles {
		renders["chart "+filepath.Base(f)] = s.run(t, commandTimeout, helm, "template", releaseName, chart,
			"--namespace", releaseNamespace, "-f", f)
	}
	renders["kustomize config/default"] = s.run(t, commandTimeout, s.kubectl, "kustomize", filepath.Join(s.root, "config", "default"))
	return renders
}

// testRestricted checks the Pod of the one Deployment of rendered: created
// with a server-side dry-run in restrictedNamespace, it is admitted as is
// and rejected with a weakened securityContext.
func testRestricted(t *testing.T, c client.Client, rendered []byte) {
	g := NewWithT(t)
	objs, err := utils.DecodeObjects(rendered)
	g.Expect(err).NotTo(HaveOccurred())
	var deployments []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			deployments = append(deployments, o)
		}
	}
	g.Expect(deployments).To(HaveLen(1), "the manifests must hold exactly one Deployment, the manager's")
	pod := podOf(g, deployments[0])

	err = c.Create(t.Context(), pod.DeepCopy(), client.DryRunAll)
	g.Expect(err).NotTo(HaveOccurred(), "the manager Pod must pass the restricted Pod Security Standard")

	yes := true
	weakenings := []struct {
		name string
		// weaken undoes one setting the restricted policy requires.
		weaken func(*corev1.Pod)
		// violation is how the PodSecurity admission plugin names it.
		violation string
	}{{
		name: "runAsNonRoot removed",
		weaken: func(p *corev1.Pod) {
			if p.Spec.SecurityContext != nil {
				p.Spec.SecurityContext.RunAsNonRoot = nil
			}
			for i := range p.Spec.Containers {
				if sc := p.Spec.Containers[i].SecurityContext; sc != nil {
					sc.RunAsNonRoot = nil
				}
			}
		},
		violation: "runAsNonRoot != true",
	}, {
		name: "allowPrivilegeEscalation true",
		weaken: func(p *corev1.Pod) {
			for i := range p.Spec.Containers {
				if p.Spec.Containers[i].SecurityContext == nil {
					p.Spec.Containers[i].SecurityContext = &corev1.SecurityContext{}
				}
				p.Spec.Containers[i].SecurityContext.AllowPrivilegeEscalation = &yes
			}
		},
		violation: "allowPrivilegeEscalation != false",
	}}
	for _, w := range weakenings {
		weak := pod.DeepCopy()
		w.weaken(weak)
		err := c.Create(t.Context(), weak, client.DryRunAll)
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: the Pod must be forbidden, got %v", w.name, err)
		g.Expect(err).To(MatchError(ContainSubstring(restrictedViolation)), w.name)
		g.Expect(err).To(MatchError(ContainSubstring(w.violation)), w.name)
	}
}

// podOf returns a Pod of restrictedNamespace with the metadata (labels and
// annotations) and the spec of the Deployment's pod template, as the
// Deployment's ReplicaSet would create it. The conversion rejects unknown
// fields, so nothing of the template is silently left out.
func podOf(g Gomega, deploy *unstructured.Unstructured) *corev1.Pod {
	template, found, err := unstructured.NestedMap(deploy.Object, "spec", "template")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(found).To(BeTrue(), "Deployment %s has no pod template", deploy.GetName())
	var tmpl corev1.PodTemplateSpec
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(template, &tmpl, true)).To(Succeed())
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        deploy.GetName(),
			Namespace:   restrictedNamespace,
			Labels:      tmpl.Labels,
			Annotations: tmpl.Annotations,
		},
		Spec: tmpl.Spec,
	}
}
