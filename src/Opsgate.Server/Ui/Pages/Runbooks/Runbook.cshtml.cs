using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Opsgate.Server.Access;
using Opsgate.Server.Engine.Runbooks;

namespace Opsgate.Server.Ui.Pages;

/// <summary>One runbook: its options, parameter schema and steps with their inputs as written (templates unrendered).</summary>
internal sealed class RunbookModel(RunbookCatalog catalog) : PageModel
{
    /// <summary>The least role of the API's submit route (POST /api/v1/jobs).</summary>
    public const Role LaunchRole = Role.Operator;

    public Runbook? Runbook { get; private set; }

    public bool MayLaunchIt => MayLaunch(HttpContext.Principal()!);

    public static bool MayLaunch(Principal principal) => principal.Role is { } role && role >= LaunchRole;

    /// <summary>Why <paramref name="me"/> may not do what needs <paramref name="least"/>, in the API's words (its role policy's); null if it may.</summary>
    public static string? RoleRefusal(Principal me, Role least) => me.Role is { } role && role >= least
        ? null
        : $"this requires role {least.Name()} or higher; {(me.Role is { } r ? $"{me.Name} has role {r.Name()}" : $"{me.Name} has no role")}";

    public IActionResult OnGet(string name)
    {
        Runbook = catalog.Find(name);
        if (Runbook is null)
            Response.StatusCode = StatusCodes.Status404NotFound;
        return Page();
    }

    /// <summary>A step input as written in the runbook: text as itself, anything else as compact JSON.</summary>
    public static string Input(JsonNode? value) => value switch
    {
        null => "null",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => value.ToJsonString(),
    };

    public static string Type(RunbookParameter p) => p.Type.ToString().ToLowerInvariant();

    public static string Range(RunbookParameter p) => (p.Min, p.Max) switch
    {
        (null, null) => "—",
        ({ } min, null) => "≥ " + LaunchForm.Number(min),
        (null, { } max) => "≤ " + LaunchForm.Number(max),
        var (min, max) => $"{LaunchForm.Number(min!.Value)} – {LaunchForm.Number(max!.Value)}",
    };
}
