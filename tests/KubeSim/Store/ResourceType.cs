namespace KubeSim.Store;

/// <summary>One served resource: what discovery lists and what the REST routes resolve to.</summary>
internal sealed record ResourceType(
    string Group,
    string Version,
    string Plural,
    string Singular,
    string Kind,
    bool Namespaced,
    IReadOnlyList<string> ShortNames,
    bool HasStatus = false,
    bool HasScale = false,
    bool TracksGeneration = false)
{
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>"deployments.apps", "pods": how the apiserver names the resource in messages.</summary>
    public string GroupResource => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    /// <summary>"Deployment.apps", "Pod": how the apiserver names the kind in Invalid messages.</summary>
    public string GroupKind => Group.Length == 0 ? Kind : $"{Kind}.{Group}";

    public override string ToString() => GroupResource;
}

internal static class ResourceTypes
{
    public const string Rbac = "rbac.authorization.k8s.io";

    public static readonly ResourceType Namespaces = new("", "v1", "namespaces", "namespace", "Namespace", false, ["ns"], HasStatus: true);
    public static readonly ResourceType Pods = new("", "v1", "pods", "pod", "Pod", true, ["po"], HasStatus: true);
    public static readonly ResourceType Pvcs = new("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true, ["pvc"], HasStatus: true);
    public static readonly ResourceType ServiceAccounts = new("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, ["sa"]);
    public static readonly ResourceType Secrets = new("", "v1", "secrets", "secret", "Secret", true, []);
    public static readonly ResourceType ConfigMaps = new("", "v1", "configmaps", "configmap", "ConfigMap", true, ["cm"]);
    public static readonly ResourceType Deployments = new("apps", "v1", "deployments", "deployment", "Deployment", true, ["deploy"], HasStatus: true, HasScale: true, TracksGeneration: true);
    public static readonly ResourceType StatefulSets = new("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, ["sts"], HasStatus: true, HasScale: true, TracksGeneration: true);
    public static readonly ResourceType Roles = new(Rbac, "v1", "roles", "role", "Role", true, []);
    public static readonly ResourceType RoleBindings = new(Rbac, "v1", "rolebindings", "rolebinding", "RoleBinding", true, []);
    public static readonly ResourceType ClusterRoles = new(Rbac, "v1", "clusterroles", "clusterrole", "ClusterRole", false, []);
    public static readonly ResourceType ClusterRoleBindings = new(Rbac, "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false, []);

    public static readonly IReadOnlyList<ResourceType> All =
    [
        Namespaces, Pods, Pvcs, ServiceAccounts, Secrets, ConfigMaps,
        Deployments, StatefulSets,
        Roles, RoleBindings, ClusterRoles, ClusterRoleBindings,
    ];

    /// <summary>Group versions in discovery order.</summary>
    public static IEnumerable<(string Group, string Version)> GroupVersions =>
        All.Select(t => (t.Group, t.Version)).Distinct();

    public static ResourceType? Find(string apiVersion, string plural) =>
        All.FirstOrDefault(t => t.ApiVersion == apiVersion && t.Plural == plural);

    public static ResourceType? FindByKind(string apiVersion, string kind) =>
        All.FirstOrDefault(t => t.ApiVersion == apiVersion && t.Kind == kind);

    public static ResourceType Require(string apiVersion, string plural) =>
        Find(apiVersion, plural) ?? throw KubeApiException.NotFoundPath($"the server could not find the requested resource ({apiVersion} {plural})");
}
