#!/usr/bin/python3
"""Drives a running skiff apiserver with the official Kubernetes Python client (python3-kubernetes).

Usage: python_client_test.py KUBECONFIG
"""
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main(kubeconfig):
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py", labels={"from": "python"}),
                              data={"k": "v"})
    created = core.create_namespaced_config_map("default", body)
    assert created.metadata.uid, "no uid"
    listed = core.list_namespaced_config_map("default", label_selector="from=python")
    assert [c.metadata.name for c in listed.items] == ["py"], listed.items

    # A watch from the list's version sees a change made afterwards.
    events = []

    def watcher():
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_config_map, "default",
                              resource_version=listed.metadata.resource_version,
                              timeout_seconds=5):
            events.append((event["type"], event["object"].metadata.name,
                           (event["object"].data or {}).get("k")))
            if event["type"] == "MODIFIED":
                w.stop()

    t = threading.Thread(target=watcher)
    t.start()
    core.patch_namespaced_config_map("py", "default", {"data": {"k": "patched"}})
    t.join(10)
    assert ("MODIFIED", "py", "patched") in events, events

    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pydep"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "pydep"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "pydep"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="i")]))))
    apps.create_namespaced_deployment("default", dep)
    scale = apps.patch_namespaced_deployment_scale("pydep", "default", {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4, scale
    assert apps.read_namespaced_deployment("pydep", "default").spec.replicas == 4

    core.delete_namespaced_config_map("py", "default")
    apps.delete_namespaced_deployment("pydep", "default")
    try:
        core.read_namespaced_config_map("py", "default")
        raise AssertionError("deleted ConfigMap still readable")
    except ApiException as e:
        assert e.status == 404, e.status
    print("python client e2e: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
