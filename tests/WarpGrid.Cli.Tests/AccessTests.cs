using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using WarpGrid.Cli.Tests.Infrastructure;

namespace WarpGrid.Cli.Tests;

/// <summary>Credentials, contexts and the access-control commands against a real warpd (authentication on every endpoint but health).</summary>
public sealed class AccessTests(Warpd warpd) : IClassFixture<Warpd>
{
    private const string BogusToken = "wgt.bogus123.abcdefghijklmnopqrstuvwxyz012345";

    [Fact]
    public async Task Deploy_to_a_fresh_local_node_needs_no_configured_credential()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("hello", temp.Path);
        File.SetLastWriteTimeUtc(Path.Combine(dir, "hello.wasm"), DateTime.UtcNow.AddMinutes(1));

        // Warp.RunAsync hides WARP_TOKEN and points WARP_CONFIG at a missing file: the token comes from the file /v1/health names.
        var run = await Warp.RunAsync("deploy", dir, "--node", warpd.ApiUrl, "--json");

        Assert.True(run.ExitCode == 0, run + warpd.Tail);
        Assert.Equal("hello", run.Json.GetProperty("deployment").GetProperty("name").GetString());

        var status = await Warp.RunAsync("status", "--node", warpd.ApiUrl, "-n", "default", "--json");
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains(status.Json.GetProperty("deployments").EnumerateArray(), d => d.GetProperty("name").GetString() == "hello");
    }

    [Fact]
    public async Task A_bad_token_is_refused_with_a_login_hint()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("hello", temp.Path);
        File.SetLastWriteTimeUtc(Path.Combine(dir, "hello.wasm"), DateTime.UtcNow.AddMinutes(1));

        var run = await Warp.RunAsync(new Dictionary<string, string?> { ["WARP_TOKEN"] = BogusToken }, "deploy", dir, "--node", warpd.ApiUrl);

        Assert.True(run.ExitCode == 5, run.ToString());
        Assert.Contains("401", run.Stderr);
        Assert.Contains("warp login --node", run.Stderr);
        Assert.Contains("WARP_TOKEN", run.Stderr);
        Assert.DoesNotContain(BogusToken, run.Stdout + run.Stderr);

        var flag = await Warp.RunAsync("auth", "whoami", "--node", warpd.ApiUrl, "--token", BogusToken, "--json");
        Assert.True(flag.ExitCode == 5, flag.ToString());
        Assert.Contains("warp login", flag.Json.GetProperty("error").GetProperty("hint").GetString());
    }

    [Fact]
    public async Task Deploy_refuses_a_namespace_flag_the_manifest_does_not_declare()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("hello", temp.Path);
        File.SetLastWriteTimeUtc(Path.Combine(dir, "hello.wasm"), DateTime.UtcNow.AddMinutes(1));

        var run = await Warp.RunAsync("deploy", dir, "--node", warpd.ApiUrl, "-n", "team-z", "--json");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("[package] namespace", run.Json.GetProperty("error").GetProperty("hint").GetString());
    }

    [Fact]
    public async Task Namespace_service_account_token_and_binding_grant_exactly_that_namespace()
    {
        var node = warpd.ApiUrl;
        var ns = await Warp.RunAsync("namespaces", "create", "team-a", "--quota-instances", "20", "--quota-memory", "2GiB", "--node", node, "--json");
        Assert.True(ns.ExitCode == 0, ns.ToString());
        var sa = await Warp.RunAsync("serviceaccounts", "create", "ci", "-n", "team-a", "--node", node);
        Assert.True(sa.ExitCode == 0, sa.ToString());
        var issued = await Warp.RunAsync("serviceaccounts", "token", "ci", "-n", "team-a", "--ttl", "1h", "--node", node);
        Assert.True(issued.ExitCode == 0, issued.ToString());
        var token = issued.Stdout.Trim();
        Assert.StartsWith("wgt.", token, StringComparison.Ordinal);
        var binding = await Warp.RunAsync("rolebindings", "create", "ci-edit", "--role", "edit", "--subject", "serviceaccount:team-a:ci", "-n", "team-a", "--node", node);
        Assert.True(binding.ExitCode == 0, binding.ToString());

        var asCi = new Dictionary<string, string?> { ["WARP_TOKEN"] = token };
        var whoami = await Warp.RunAsync(asCi, "auth", "whoami", "--node", node, "--json");
        Assert.True(whoami.ExitCode == 0, whoami.ToString());
        Assert.Equal("serviceaccount:team-a:ci", whoami.Json.GetProperty("identity").GetProperty("subject").GetString());

        var yes = await Warp.RunAsync(asCi, "auth", "can-i", "create", "deployments", "-n", "team-a", "--node", node);
        Assert.True(yes.ExitCode == 0, yes.ToString());
        Assert.Equal("yes", yes.Stdout.Trim());
        var no = await Warp.RunAsync(asCi, "auth", "can-i", "create", "deployments", "-n", "default", "--node", node);
        Assert.True(no.ExitCode == 5, no.ToString());
        Assert.Equal("no", no.Stdout.Trim());

        var forbidden = await Warp.RunAsync(asCi, "namespaces", "create", "team-b", "--node", node);
        Assert.True(forbidden.ExitCode == 5, forbidden.ToString());
        Assert.Contains("403", forbidden.Stderr);
        Assert.Contains("create namespaces", forbidden.Stderr);

        var tokens = await Warp.RunAsync("serviceaccounts", "tokens", "-n", "team-a", "--node", node, "--json");
        Assert.True(tokens.ExitCode == 0, tokens.ToString());
        Assert.DoesNotContain(token, tokens.Stdout);
        var id = Assert.Single(tokens.Json.GetProperty("tokens").EnumerateArray()).GetProperty("id").GetString()!;
        var bindings = await Warp.RunAsync("rolebindings", "list", "-n", "team-a", "--node", node);
        Assert.Contains("serviceaccount:team-a:ci", bindings.Stdout);

        var revoked = await Warp.RunAsync("serviceaccounts", "revoke", id, "-n", "team-a", "--node", node);
        Assert.True(revoked.ExitCode == 0, revoked.ToString());
        var after = await Warp.RunAsync(asCi, "auth", "whoami", "--node", node);
        Assert.True(after.ExitCode == 5, after.ToString());

        // The refused namespace creation is audited (records are written in the background: poll with a deadline).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var audit = await Warp.RunAsync("audit", "--since", "1h", "--outcome", "forbidden", "--node", node, "--json");
            Assert.True(audit.ExitCode == 0, audit.ToString());
            if (audit.Json.GetProperty("records").EnumerateArray().Any(r => r.GetProperty("identity").GetString() == "serviceaccount:team-a:ci"))
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, "no forbidden audit record of serviceaccount:team-a:ci: " + audit);
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Login_saves_contexts_in_a_private_file_and_use_context_switches()
    {
        using var temp = new TempDir();
        var config = Path.Combine(temp.Path, "warp", "config.toml");
        var env = new Dictionary<string, string?> { ["WARP_CONFIG"] = config };
        var admin = warpd.AdminToken;

        var login = await Warp.RunWithInputAsync(admin, env, "login", "--node", warpd.ApiUrl, "--token-stdin", "--context", "local-admin", "-n", "team-c");
        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.DoesNotContain(admin, login.Stdout + login.Stderr);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(config));
        }

        var refused = await Warp.RunAsync(env, "login", "--node", warpd.ApiUrl, "--token", BogusToken, "--context", "bogus");
        Assert.True(refused.ExitCode == 5, refused.ToString());

        var second = await Warp.RunWithInputAsync(admin + "\n", env, "login", "--node", warpd.ApiUrl + "/", "--token-stdin", "--context", "other");
        Assert.True(second.ExitCode == 0, second.ToString());

        var current = await Warp.RunAsync(env, "config", "current-context");
        Assert.Equal("other", current.Stdout.Trim());
        var listed = await Warp.RunAsync(env, "config", "get-contexts", "--json");
        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.DoesNotContain(admin, listed.Stdout);
        var names = listed.Json.GetProperty("contexts").EnumerateArray().Select(c => c.GetProperty("name").GetString()).ToList();
        Assert.Equal(["local-admin", "other"], names);

        var use = await Warp.RunAsync(env, "config", "use-context", "local-admin");
        Assert.True(use.ExitCode == 0, use.ToString());
        Assert.Equal("local-admin", (await Warp.RunAsync(env, "config", "current-context")).Stdout.Trim());
        var missing = await Warp.RunAsync(env, "config", "use-context", "nope");
        Assert.True(missing.ExitCode == 1, missing.ToString());

        // The context gives the node, the token and the default namespace: no --node, no discovery (WARP_NODE is unset).
        var whoami = await Warp.RunAsync(env, "auth", "whoami", "--json");
        Assert.True(whoami.ExitCode == 0, whoami.ToString());
        Assert.Equal("serviceaccount:warp-system:admin", whoami.Json.GetProperty("identity").GetProperty("subject").GetString());
        var canI = await Warp.RunAsync(env, "auth", "can-i", "create", "deployments", "--json");
        Assert.Equal("team-c", canI.Json.GetProperty("answer").GetProperty("namespace").GetString());
    }

    [Fact]
    public async Task Certificate_request_writes_a_private_key_and_a_certificate_of_the_cluster_ca()
    {
        using var temp = new TempDir();
        var run = await Warp.RunAsync("certificate", "request", "--user", "alice", "--group", "ops", "--out-dir", temp.Path, "--ttl", "2h", "--node", warpd.ApiUrl, "--json");

        Assert.True(run.ExitCode == 0, run + warpd.Tail);
        var key = Path.Combine(temp.Path, "alice.key");
        var crt = Path.Combine(temp.Path, "alice.crt");
        var ca = Path.Combine(temp.Path, "ca.crt");
        Assert.True(File.Exists(key) && File.Exists(crt) && File.Exists(ca), run.ToString());
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        }

        using var certificate = X509Certificate2.CreateFromPemFile(crt, key);
        Assert.Contains("CN=alice", certificate.Subject, StringComparison.Ordinal);
        Assert.Contains("O=WarpGrid users", certificate.Subject, StringComparison.Ordinal);
        Assert.True(certificate.HasPrivateKey);

        var info = new ProcessStartInfo("openssl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "verify", "-CAfile", ca, crt })
        {
            info.ArgumentList.Add(arg);
        }

        using var openssl = Process.Start(info)!;
        var output = await openssl.StandardOutput.ReadToEndAsync() + await openssl.StandardError.ReadToEndAsync();
        await openssl.WaitForExitAsync();
        Assert.True(openssl.ExitCode == 0, output);
    }
}
