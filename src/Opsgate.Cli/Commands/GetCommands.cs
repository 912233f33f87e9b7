using System.CommandLine;
using System.Globalization;
using Opsgate.Cli.Output;
using Opsgate.Client;

namespace Opsgate.Cli.Commands;

/// <summary>get and describe.</summary>
internal static class GetCommands
{
    public static Command Get(CliIo io, GlobalOptions globals)
    {
        var clusters = new Command("clusters", "Registered clusters and their status");
        clusters.Aliases.Add("cluster");
        clusters.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            using var client = globals.Client(parsed, io);
            var list = await client.ListClustersAsync(ct);
            if (printer.IsStructured)
                printer.Structured(new ClusterList(list), OpsgateJson.Default.ClusterList);
            else
                Views.Clusters(printer, list, DateTime.UtcNow);
            return ExitCodes.Ok;
        });

        var runbooks = new Command("runbooks", "Runbooks (job types) with their parameters");
        runbooks.Aliases.Add("runbook");
        runbooks.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            using var client = globals.Client(parsed, io);
            var list = await client.ListRunbooksAsync(ct);
            if (printer.IsStructured)
                printer.Structured(list, OpsgateJson.Default.IReadOnlyListRunbook);
            else
                Views.Runbooks(printer, list);
            return ExitCodes.Ok;
        });

        var status = new Option<string?>("--status") { Description = "Only jobs in this state" };
        status.AcceptOnlyFromAmong("pending", "waiting_approval", "running", "succeeded", "failed", "cancelled");
        var type = new Option<string?>("--type") { Description = "Only jobs of this runbook" };
        var limit = new Option<int>("--limit") { Description = "At most this many jobs (1 to 500)", DefaultValueFactory = _ => 50 };
        var cursor = new Option<string?>("--cursor") { Description = "Start after this job (the next-page cursor a previous page printed)" };
        var jobs = new Command("jobs", "Jobs, newest first") { status, type, limit, cursor };
        jobs.Aliases.Add("job");
        jobs.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            var max = parsed.GetValue(limit);
            if (max is < 1 or > 500)
                throw new UsageException("--limit: must be between 1 and 500");
            using var client = globals.Client(parsed, io);
            var page = await client.ListJobsAsync(new JobQuery(parsed.GetValue(status), parsed.GetValue(type), max, parsed.GetValue(cursor)), ct);
            if (printer.IsStructured)
            {
                printer.Structured(page, OpsgateJson.Default.JobPage);
                return ExitCodes.Ok;
            }
            Views.Jobs(printer, page.Items, DateTime.UtcNow);
            if (page.NextCursor is not null)
                await io.Err.WriteLineAsync($"more: opsctl get jobs --cursor {page.NextCursor}");
            return ExitCodes.Ok;
        });

        return new Command("get", "List resources: clusters, jobs, runbooks") { clusters, jobs, runbooks };
    }

    public static Command Describe(CliIo io, GlobalOptions globals)
    {
        var id = new Argument<string>("id") { Description = "The job's id" };
        var job = new Command("job", "A job with its parameters and steps") { id };
        job.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            using var client = globals.Client(parsed, io);
            var found = await client.GetJobAsync(parsed.GetValue(id)!, ct);
            if (printer.IsStructured)
                printer.Structured(found, OpsgateJson.Default.Job);
            else
                Views.DescribeJob(io.Out, printer, found);
            return ExitCodes.Ok;
        });

        var name = new Argument<string>("name") { Description = "The cluster's name" };
        var cluster = new Command("cluster", "A cluster, probed now") { name };
        cluster.SetAction(async (parsed, ct) =>
        {
            var printer = globals.Printer(parsed, io);
            using var client = globals.Client(parsed, io);
            var found = await client.ClusterStatusAsync(parsed.GetValue(name)!, ct);
            if (printer.IsStructured)
            {
                printer.Structured(found, OpsgateJson.Default.Cluster);
                return ExitCodes.Ok;
            }
            var w = io.Out;
            w.WriteLine($"Name:               {found.Name}");
            w.WriteLine($"Server:             {found.Server}");
            w.WriteLine($"Status:             {found.Status}{(found.Message is null ? "" : " (" + found.Message + ")")}");
            w.WriteLine($"Version:            {found.ServerVersion ?? "<unknown>"}");
            w.WriteLine($"Allowed namespaces: {string.Join(", ", found.AllowedNamespaces)}");
            w.WriteLine($"Last checked:       {Views.Time(found.LastChecked)}");
            if (found.LatestExecution is { } last)
                w.WriteLine($"Latest execution:   {last.Action} {last.Namespace}/{last.ResourceName} {last.Status} by {last.Actor} at {Views.Time(last.At)}");
            return ExitCodes.Ok;
        });
        return new Command("describe", "Show one resource in detail: job, cluster") { job, cluster };
    }
}

/// <summary>The table and describe layouts.</summary>
internal static class Views
{
    public static string Time(DateTime? at) => at?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "<none>";

    public static void Clusters(Printer printer, IReadOnlyList<Cluster> clusters, DateTime now)
    {
        var wide = printer.Format == OutputFormat.Wide;
        IReadOnlyList<string> headers = wide
            ? ["NAME", "STATUS", "VERSION", "SERVER", "NAMESPACES", "CHECKED", "MESSAGE"]
            : ["NAME", "STATUS", "VERSION", "SERVER"];
        printer.Table(headers, clusters.Select(c => wide
            ? (IReadOnlyList<string>)[c.Name, c.Status, c.ServerVersion ?? "", c.Server, string.Join(",", c.AllowedNamespaces), Printer.Age(c.LastChecked, now), c.Message ?? ""]
            : [c.Name, c.Status, c.ServerVersion ?? "", c.Server]));
    }

    public static void Runbooks(Printer printer, IReadOnlyList<Runbook> runbooks)
    {
        var wide = printer.Format == OutputFormat.Wide;
        // Required parameters carry a *, as in a form.
        static string Params(Runbook r) => string.Join(",", r.Parameters.Select(p => p.Required ? p.Name + "*" : p.Name));
        IReadOnlyList<string> headers = wide
            ? ["NAME", "STEPS", "APPROVAL", "PARAMETERS", "SOURCE", "DESCRIPTION"]
            : ["NAME", "STEPS", "APPROVAL", "PARAMETERS"];
        printer.Table(headers, runbooks.Select(r => wide
            ? (IReadOnlyList<string>)[r.Name, r.Steps.Count.ToString(CultureInfo.InvariantCulture), r.RequiresApproval ? r.ApproversRole : "-", Params(r), r.Source, r.Description ?? ""]
            : [r.Name, r.Steps.Count.ToString(CultureInfo.InvariantCulture), r.RequiresApproval ? r.ApproversRole : "-", Params(r)]));
    }

    public static void Jobs(Printer printer, IReadOnlyList<Job> jobs, DateTime now)
    {
        var wide = printer.Format == OutputFormat.Wide;
        IReadOnlyList<string> headers = wide
            ? ["ID", "TYPE", "STATUS", "ACTOR", "AGE", "DURATION", "DRY-RUN", "REASON"]
            : ["ID", "TYPE", "STATUS", "ACTOR", "AGE", "DURATION"];
        printer.Table(headers, jobs.Select(j =>
        {
            var duration = Printer.Duration(j.StartedAt, j.FinishedAt ?? (j.StartedAt is null ? null : now));
            return wide
                ? (IReadOnlyList<string>)[j.JobId, j.Type, j.Status, j.Actor ?? "", Printer.Age(j.CreatedAt, now), duration, j.DryRun ? "yes" : "no", j.Error ?? j.PendingReason ?? ""]
                : [j.JobId, j.Type, j.Status, j.Actor ?? "", Printer.Age(j.CreatedAt, now), duration];
        }));
    }

    public static void DescribeJob(TextWriter w, Printer printer, Job job)
    {
        w.WriteLine($"Id:           {job.JobId}");
        w.WriteLine($"Runbook:      {job.Type}");
        w.WriteLine($"Status:       {job.Status}{(job.CancelRequested && !job.IsFinished ? " (cancel requested)" : "")}");
        w.WriteLine($"Dry run:      {(job.DryRun ? "yes" : "no")}");
        w.WriteLine($"Actor:        {job.Actor ?? "<none>"}{(job.SourceIp is null ? "" : " from " + job.SourceIp)}");
        w.WriteLine($"Created:      {Time(job.CreatedAt)}");
        w.WriteLine($"Started:      {Time(job.StartedAt)}");
        w.WriteLine($"Finished:     {Time(job.FinishedAt)}");
        if (job.StartedAt is not null && job.FinishedAt is not null)
            w.WriteLine($"Duration:     {Printer.Duration(job.StartedAt, job.FinishedAt)}");
        w.WriteLine($"Attempt:      {job.Attempt}");
        if (job.PendingReason is not null)
            w.WriteLine($"Waiting:      {job.PendingReason}");
        if (job.Error is not null)
            w.WriteLine($"Error:        {job.Error}");
        if (job.DecidedBy is not null)
            w.WriteLine($"Decided by:   {job.DecidedBy}{(job.DecisionComment is null ? "" : ": " + job.DecisionComment)}");
        if (job.ParentId is not null)
            w.WriteLine($"Parent:       {job.ParentId} (shard {job.ShardIndex})");
        if (job.RetryOf is not null)
            w.WriteLine($"Retry of:     {job.RetryOf}");
        w.WriteLine("Parameters:");
        if (job.Params.Count == 0)
            w.WriteLine("  <none>");
        foreach (var (key, value) in job.Params)
            w.WriteLine($"  {key}: {value?.ToJsonString() ?? "null"}");
        w.WriteLine("Steps:");
        var steps = job.Steps ?? [];
        printer.Table(["  #", "NAME", "KIND", "STATUS", "ATTEMPTS", "DURATION", "DETAIL"], steps.Select(s => (IReadOnlyList<string>)[
            "  " + s.Order.ToString(CultureInfo.InvariantCulture), s.Name, s.Kind, s.Status, s.Attempts.ToString(CultureInfo.InvariantCulture),
            Printer.Duration(s.StartedAt, s.FinishedAt), s.Detail ?? ""]));
    }
}
