namespace Opsgate.Server.Kubernetes;

/// <summary>A Kubernetes resource type as its REST path needs it.</summary>
internal sealed record KubeResource(string Group, string Version, string Plural, string Kind, bool Namespaced)
{
    public static readonly KubeResource Namespaces = new("", "v1", "namespaces", "Namespace", false);
    public static readonly KubeResource Pods = new("", "v1", "pods", "Pod", true);
    public static readonly KubeResource PersistentVolumeClaims = new("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true);
    public static readonly KubeResource ServiceAccounts = new("", "v1", "serviceaccounts", "ServiceAccount", true);
    public static readonly KubeResource Secrets = new("", "v1", "secrets", "Secret", true);
    public static readonly KubeResource Deployments = new("apps", "v1", "deployments", "Deployment", true);
    public static readonly KubeResource StatefulSets = new("apps", "v1", "statefulsets", "StatefulSet", true);
    public static readonly KubeResource Roles = new("rbac.authorization.k8s.io", "v1", "roles", "Role", true);
    public static readonly KubeResource RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);

    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>/api/v1/namespaces/{ns}/pods/{name}[/{subresource}], or the collection when name is null.</summary>
    public string Path(string? ns, string? name = null, string? subresource = null)
    {
        var path = Group.Length == 0 ? $"/api/{Version}" : $"/apis/{Group}/{Version}";
        if (Namespaced && ns is not null)
            path += $"/namespaces/{Uri.EscapeDataString(ns)}";
        path += $"/{Plural}";
        if (name is not null)
            path += $"/{Uri.EscapeDataString(name)}";
        if (subresource is not null)
            path += $"/{subresource}";
        return path;
    }
}
