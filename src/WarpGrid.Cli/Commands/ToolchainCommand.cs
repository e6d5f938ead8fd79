using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Build;
using WarpGrid.Cli.Toolchains;

namespace WarpGrid.Cli.Commands;

/// <summary><c>warp toolchain check [lang] [--json]</c>.</summary>
internal static class ToolchainCommand
{
    public static Command Create(CliContext context)
    {
        var lang = CommandHelpers.NoOptionLikeValues(new Argument<string?>("lang") { Description = "One language (c, cpp, rust, go, zig, typescript, javascript, wat, python); all when omitted.", Arity = ArgumentArity.ZeroOrOne });
        var json = CommandHelpers.JsonOption();
        var check = new Command("check", "Say which guest toolchains are installed, their versions, and the exact install command for the missing ones.") { lang, json };
        CommandHelpers.SetAction(check, context, json, async (parse, cancellationToken) =>
        {
            string[] languages;
            if (parse.GetValue(lang) is { } one)
            {
                var canonical = BuildPlanner.Canonical(one) ?? throw new CliFailure(ExitCodes.Usage, "usage", $"unknown language '{one}'",
                    "use one of: " + string.Join(", ", ToolchainCatalog.Languages));
                languages = [canonical];
            }
            else
            {
                languages = [.. ToolchainCatalog.Languages];
            }

            var locator = new ToolLocator(context, Directory.GetCurrentDirectory());
            var statuses = await Task.WhenAll(languages.Select(l => ToolchainCatalog.CheckAsync(l, locator, cancellationToken))).ConfigureAwait(false);

            // Checking everything: Python is reported but does not fail the check (it never installs here).
            var failed = statuses.Where(s => !s.Found && (languages.Length == 1 || s.Status != "unsupported")).ToArray();
            var exitCode = failed.Length == 0 ? ExitCodes.Ok : ExitCodes.ToolchainMissing;
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject
                {
                    ["ok"] = exitCode == ExitCodes.Ok,
                    ["toolchains"] = JsonSerializer.SerializeToNode(statuses.Select(s => new
                    {
                        s.Lang,
                        s.Status,
                        s.Version,
                        Tools = s.Tools.Select(t => new { t.Name, t.Path, Found = t.Path is not null }),
                        s.Install,
                        s.Note,
                    }), CliContext.Json),
                    ["installScript"] = ToolchainCatalog.InstallScript,
                });
                return exitCode;
            }

            StatusCommand.WriteTable(context.Out, ["LANG", "STATUS", "VERSION"], [.. statuses.Select(s => new[] { s.Lang, s.Status, s.Version ?? "-" })]);
            foreach (var s in statuses.Where(s => !s.Found))
            {
                context.Out.WriteLine();
                context.Out.WriteLine($"{s.Lang}: {s.Note}");
                context.Out.WriteLine($"  install: {s.Install}");
            }

            if (failed.Length > 0)
            {
                context.Out.WriteLine();
                context.Out.WriteLine($"everything at once: {ToolchainCatalog.InstallScript}");
            }

            return exitCode;
        });

        return new Command("toolchain", "Guest toolchains.") { check };
    }
}
