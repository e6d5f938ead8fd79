using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Node;

namespace WarpGrid.Cli.Commands;

/// <summary>
/// Access control against a node: <c>warp auth</c>, <c>warp namespaces</c>, <c>warp serviceaccounts</c>,
/// <c>warp rolebindings</c>, <c>warp roles</c>, <c>warp certificate</c> and <c>warp audit</c>.
/// </summary>
internal static class AuthCommands
{
    /// <summary>Exit code of <c>warp auth can-i</c> when the answer is no (as for a rejected request).</summary>
    public const int Denied = ExitCodes.Rejected;

    public static Command CreateAuth(CliContext context)
    {
        var auth = new Command("auth", "Who the node takes you for and what you may do.");

        var whoami = Leaf(context, "whoami", "Show the identity of the credential in use: subject, kind, groups, how it authenticated, and the namespaces it may read deployments in.", [], async (call, parse, ct) =>
        {
            var body = await call.SendAsync(HttpMethod.Get, "v1/auth/whoami", null, ct).ConfigureAwait(false);
            return call.Emit("identity", body, () =>
            {
                call.Out.WriteLine($"subject     {body?["subject"]}");
                call.Out.WriteLine($"kind        {body?["kind"]}");
                call.Out.WriteLine($"method      {body?["method"]}");
                call.Out.WriteLine($"groups      {Join(body?["groups"])}");
                call.Out.WriteLine($"namespaces  {(body?["clusterWide"]?.GetValue<bool>() == true ? "all (cluster-wide)" : Join(body?["namespaces"]))}");
            });
        });

        var verb = new Argument<string>("verb") { Description = "The verb: get, list, create, update, delete, run, ..." };
        var resource = new Argument<string>("resource") { Description = "The resource: deployments, namespaces, serviceaccounts, tokens, rolebindings, nodes, ..." };
        var canNs = CommandHelpers.NamespaceOption();
        var canI = Leaf(context, "can-i", "Ask whether the credential may do VERB on RESOURCE (in the namespace); prints yes or no and exits 0 for yes, 5 for no.", [verb, resource, canNs], async (call, parse, ct) =>
        {
            var body = new JsonObject { ["verb"] = parse.GetValue(verb), ["resource"] = parse.GetValue(resource), ["namespace"] = NodeOptions.Namespace(context, parse, canNs) };
            var answer = await call.SendAsync(HttpMethod.Post, "v1/auth/can-i", body, ct).ConfigureAwait(false);
            var allowed = answer?["allowed"]?.GetValue<bool>() == true;
            call.Emit("answer", answer, () => call.Out.WriteLine(allowed ? "yes" : "no"));
            return allowed ? ExitCodes.Ok : Denied;
        });

        var routes = Leaf(context, "routes", "List the API's endpoints with the permission each needs.", [], async (call, parse, ct) =>
        {
            var body = await call.SendAsync(HttpMethod.Get, "v1/auth/routes", null, ct).ConfigureAwait(false);
            return call.Emit("routes", body, () => StatusCommand.WriteTable(call.Out, ["METHODS", "ROUTE", "PERMISSION", "SCOPE"],
                [.. Rows(body).Select(r => new[] { Join(r["methods"]), Str(r["route"]), Str(r["permission"]), Str(r["scope"]) })]));
        });

        auth.Subcommands.Add(whoami);
        auth.Subcommands.Add(canI);
        auth.Subcommands.Add(routes);
        return auth;
    }

    public static Command CreateNamespaces(CliContext context)
    {
        var namespaces = new Command("namespaces", "Namespaces: their quotas, signing keys and usage.");
        namespaces.Aliases.Add("ns");

        namespaces.Subcommands.Add(Leaf(context, "list", "List the namespaces you may see, with quota usage.", [], async (call, parse, ct) =>
        {
            var body = await call.SendAsync(HttpMethod.Get, "v1/namespaces", null, ct).ConfigureAwait(false);
            return call.Emit("namespaces", body, () => StatusCommand.WriteTable(call.Out, ["NAME", "DEPLOYMENTS", "INSTANCES", "MEMORY", "MODULE BYTES", "SIGNATURES"],
                [.. Rows(body).Select(r => new[]
                {
                    Str(r["name"]),
                    Usage(r["quota"]?["deployments"]),
                    Usage(r["quota"]?["instances"]),
                    Usage(r["quota"]?["memory"]),
                    Usage(r["quota"]?["moduleBytes"]),
                    r["requireSignatures"]?.GetValue<bool>() == true ? $"required ({r["signingKeys"]} keys)" : $"optional ({r["signingKeys"]} keys)",
                })]));
        }));

        var getName = new Argument<string>("name") { Description = "The namespace." };
        namespaces.Subcommands.Add(Leaf(context, "get", "Show one namespace.", [getName], async (call, parse, ct) =>
        {
            var body = await call.SendAsync(HttpMethod.Get, "v1/namespaces/" + Uri.EscapeDataString(parse.GetValue(getName)!), null, ct).ConfigureAwait(false);
            return call.Emit("namespace", body, () =>
            {
                call.Out.WriteLine($"name         {body?["name"]}");
                call.Out.WriteLine($"created      {body?["createdAt"]?.ToString() ?? "-"}");
                call.Out.WriteLine($"signatures   {(body?["requireSignatures"]?.GetValue<bool>() == true ? "required" : "optional")} ({body?["signingKeys"]} keys)");
                foreach (var item in new[] { "deployments", "instances", "memory", "moduleBytes" })
                {
                    call.Out.WriteLine($"{item,-12} {Usage(body?["quota"]?[item])}");
                }
            });
        }));

        var createName = new Argument<string>("name") { Description = "The namespace: a DNS label such as team-a." };
        var memory = new Option<string?>("--quota-memory") { Description = "The most memory its instances may reserve together, e.g. 2GiB.", HelpName = "SIZE" };
        var instances = new Option<int?>("--quota-instances") { Description = "The most instances at once.", HelpName = "N" };
        var deployments = new Option<int?>("--quota-deployments") { Description = "The most deployments.", HelpName = "N" };
        var moduleBytes = new Option<string?>("--quota-module-bytes") { Description = "The largest module, e.g. 64MiB.", HelpName = "SIZE" };
        var keys = new Option<string[]>("--signing-key") { Description = "A cosign public key (PEM, ECDSA P-256) whose signatures the namespace accepts; repeat for more.", HelpName = "FILE", AllowMultipleArgumentsPerToken = false };
        var require = new Option<bool>("--require-signatures") { Description = "Refuse modules not signed by one of the signing keys." };
        namespaces.Subcommands.Add(Leaf(context, "create", "Create a namespace, optionally with quotas and signing keys.", [createName, memory, instances, deployments, moduleBytes, keys, require], async (call, parse, ct) =>
        {
            var body = new JsonObject { ["name"] = parse.GetValue(createName) };
            var quota = new JsonObject();
            if (parse.GetValue(memory) is { } m)
            {
                quota["memory"] = m;
            }

            if (parse.GetValue(instances) is { } i)
            {
                quota["instances"] = i;
            }

            if (parse.GetValue(deployments) is { } d)
            {
                quota["deployments"] = d;
            }

            if (parse.GetValue(moduleBytes) is { } b)
            {
                quota["moduleBytes"] = b;
            }

            if (quota.Count > 0)
            {
                body["quota"] = quota;
            }

            var pems = new JsonArray();
            foreach (var file in parse.GetValue(keys) ?? [])
            {
                pems.Add(await ReadFileAsync(file, "--signing-key", ct).ConfigureAwait(false));
            }

            if (pems.Count > 0)
            {
                body["signingKeys"] = pems;
            }

            if (parse.GetValue(require))
            {
                body["requireSignatures"] = true;
            }

            var created = await call.SendAsync(HttpMethod.Post, "v1/namespaces", body, ct).ConfigureAwait(false);
            return call.Emit("namespace", created, () => call.Out.WriteLine($"created namespace {created?["name"]}"));
        }));

        var deleteName = new Argument<string>("name") { Description = "The namespace (it must hold no deployments)." };
        namespaces.Subcommands.Add(Leaf(context, "delete", "Delete an empty namespace.", [deleteName], async (call, parse, ct) =>
        {
            await call.SendAsync(HttpMethod.Delete, "v1/namespaces/" + Uri.EscapeDataString(parse.GetValue(deleteName)!), null, ct).ConfigureAwait(false);
            return call.Emit("deleted", JsonValue.Create(parse.GetValue(deleteName)), () => call.Out.WriteLine($"deleted namespace {parse.GetValue(deleteName)}"));
        }));
        return namespaces;
    }

    public static Command CreateServiceAccounts(CliContext context)
    {
        var accounts = new Command("serviceaccounts", "Service accounts of a namespace and their API tokens.");
        accounts.Aliases.Add("sa");

        var listNs = CommandHelpers.NamespaceOption();
        accounts.Subcommands.Add(Leaf(context, "list", "List the service accounts of a namespace.", [listNs], async (call, parse, ct) =>
        {
            var body = await call.SendAsync(HttpMethod.Get, $"v1/namespaces/{Ns(context, parse, listNs)}/serviceaccounts", null, ct).ConfigureAwait(false);
            return call.Emit("serviceAccounts", body, () => StatusCommand.WriteTable(call.Out, ["NAME", "SUBJECT", "CREATED", "DESCRIPTION"],
                [.. Rows(body).Select(r => new[] { Str(r["name"]), Str(r["subject"]), Str(r["createdAt"]), Str(r["description"]) })]));
        }));

        var createName = new Argument<string>("name") { Description = "The service account: a DNS label such as ci." };
        var description = new Option<string?>("--description") { Description = "A note kept with it." };
        var createNs = CommandHelpers.NamespaceOption();
        accounts.Subcommands.Add(Leaf(context, "create", "Create a service account (bind it to a role with warp rolebindings create).", [createName, description, createNs], async (call, parse, ct) =>
        {
            var body = new JsonObject { ["name"] = parse.GetValue(createName), ["description"] = parse.GetValue(description) };
            var created = await call.SendAsync(HttpMethod.Post, $"v1/namespaces/{Ns(context, parse, createNs)}/serviceaccounts", body, ct).ConfigureAwait(false);
            return call.Emit("serviceAccount", created, () => call.Out.WriteLine($"created service account {created?["subject"]}"));
        }));

        var deleteName = new Argument<string>("name") { Description = "The service account." };
        var deleteNs = CommandHelpers.NamespaceOption();
        accounts.Subcommands.Add(Leaf(context, "delete", "Delete a service account (its tokens stop working).", [deleteName, deleteNs], async (call, parse, ct) =>
        {
            var ns = Ns(context, parse, deleteNs);
            await call.SendAsync(HttpMethod.Delete, $"v1/namespaces/{ns}/serviceaccounts/{Uri.EscapeDataString(parse.GetValue(deleteName)!)}", null, ct).ConfigureAwait(false);
            return call.Emit("deleted", JsonValue.Create($"serviceaccount:{Uri.UnescapeDataString(ns)}:{parse.GetValue(deleteName)}"), () => call.Out.WriteLine($"deleted service account {parse.GetValue(deleteName)}"));
        }));

        var tokenName = new Argument<string>("name") { Description = "The service account." };
        var ttl = new Option<string?>("--ttl") { Description = "How long the token is accepted, e.g. 24h (default: it does not expire).", HelpName = "DURATION" };
        var tokenDescription = new Option<string?>("--description") { Description = "A note kept with the token." };
        var tokenNs = CommandHelpers.NamespaceOption();
        accounts.Subcommands.Add(Leaf(context, "token", "Create an API token for a service account and print it (shown only now; the node keeps only its hash).", [tokenName, ttl, tokenDescription, tokenNs], async (call, parse, ct) =>
        {
            var body = new JsonObject();
            if (parse.GetValue(ttl) is { } t)
            {
                body["ttl"] = t;
            }

            if (parse.GetValue(tokenDescription) is { } d)
            {
                body["description"] = d;
            }

            var created = await call.SendAsync(HttpMethod.Post, $"v1/namespaces/{Ns(context, parse, tokenNs)}/serviceaccounts/{Uri.EscapeDataString(parse.GetValue(tokenName)!)}/tokens", body, ct).ConfigureAwait(false);
            return call.Emit("token", created, () =>
            {
                call.Out.WriteLine(created?["token"]?.ToString());
                call.Err.WriteLine($"token {created?["id"]} for serviceaccount:{created?["namespace"]}:{created?["serviceAccount"]}, {(created?["expiresAt"] is { } at ? "valid until " + at : "no expiry")}; shown only now. Use it with: warp login --node URL --token-stdin");
            });
        }));

        var tokensNs = CommandHelpers.NamespaceOption();
        accounts.Subcommands.Add(Leaf(context, "tokens", "List the API tokens of a namespace (ids, never secrets).", [tokensNs], async (call, parse, ct) =>
        {
            var body = await call.SendAsync(HttpMethod.Get, $"v1/namespaces/{Ns(context, parse, tokensNs)}/tokens", null, ct).ConfigureAwait(false);
            return call.Emit("tokens", body, () => StatusCommand.WriteTable(call.Out, ["ID", "SERVICE ACCOUNT", "CREATED", "EXPIRES", "DESCRIPTION"],
                [.. Rows(body).Select(r => new[] { Str(r["id"]), Str(r["serviceAccount"]), Str(r["createdAt"]), r["expiresAt"] is null ? "never" : Str(r["expiresAt"]), Str(r["description"]) })]));
        }));

        var revokeId = new Argument<string>("id") { Description = "The token's id (from warp serviceaccounts tokens)." };
        var revokeNs = CommandHelpers.NamespaceOption();
        accounts.Subcommands.Add(Leaf(context, "revoke", "Revoke an API token.", [revokeId, revokeNs], async (call, parse, ct) =>
        {
            await call.SendAsync(HttpMethod.Delete, $"v1/namespaces/{Ns(context, parse, revokeNs)}/tokens/{Uri.EscapeDataString(parse.GetValue(revokeId)!)}", null, ct).ConfigureAwait(false);
            return call.Emit("revoked", JsonValue.Create(parse.GetValue(revokeId)), () => call.Out.WriteLine($"revoked token {parse.GetValue(revokeId)}"));
        }));
        return accounts;
    }

    public static Command CreateRoleBindings(CliContext context)
    {
        var bindings = new Command("rolebindings", "Role bindings: who holds which role, in a namespace (-n) or cluster-wide (--cluster).");

        var listNs = CommandHelpers.NamespaceOption();
        var listCluster = ClusterOption();
        bindings.Subcommands.Add(Leaf(context, "list", "List the role bindings of a namespace, or the cluster-wide ones.", [listNs, listCluster], async (call, parse, ct) =>
        {
            var body = await call.SendAsync(HttpMethod.Get, BindingsPath(context, parse, listNs, listCluster), null, ct).ConfigureAwait(false);
            return call.Emit("roleBindings", body, () => StatusCommand.WriteTable(call.Out, ["NAME", "ROLE", "NAMESPACE", "SUBJECTS"],
                [.. Rows(body).Select(r => new[] { Str(r["name"]), Str(r["role"]), r["namespace"] is null ? "(cluster)" : Str(r["namespace"]), Subjects(r["subjects"]) })]));
        }));

        var createName = new Argument<string>("name") { Description = "The binding's name." };
        var role = new Option<string>("--role") { Description = "The role: admin, edit, view, cluster-admin or a custom one (warp roles list).", HelpName = "ROLE", Required = true };
        var subjects = new Option<string[]>("--subject") { Description = "Who: serviceaccount:NAMESPACE:NAME, user:NAME or group:NAME; repeat for more.", HelpName = "SUBJECT", Required = true };
        var createNs = CommandHelpers.NamespaceOption();
        var createCluster = ClusterOption();
        bindings.Subcommands.Add(Leaf(context, "create", "Bind a role to subjects.", [createName, role, subjects, createNs, createCluster], async (call, parse, ct) =>
        {
            var body = new JsonObject
            {
                ["name"] = parse.GetValue(createName),
                ["role"] = parse.GetValue(role),
                ["subjects"] = new JsonArray([.. (parse.GetValue(subjects) ?? []).Select(s => (JsonNode)JsonValue.Create(s))]),
            };
            var created = await call.SendAsync(HttpMethod.Post, BindingsPath(context, parse, createNs, createCluster), body, ct).ConfigureAwait(false);
            return call.Emit("roleBinding", created, () => call.Out.WriteLine($"created role binding {created?["name"]}: {created?["role"]} {(created?["namespace"] is { } n ? "in namespace " + n : "cluster-wide")} for {Subjects(created?["subjects"])}"));
        }));

        var deleteName = new Argument<string>("name") { Description = "The binding." };
        var deleteNs = CommandHelpers.NamespaceOption();
        var deleteCluster = ClusterOption();
        bindings.Subcommands.Add(Leaf(context, "delete", "Delete a role binding.", [deleteName, deleteNs, deleteCluster], async (call, parse, ct) =>
        {
            await call.SendAsync(HttpMethod.Delete, BindingsPath(context, parse, deleteNs, deleteCluster) + "/" + Uri.EscapeDataString(parse.GetValue(deleteName)!), null, ct).ConfigureAwait(false);
            return call.Emit("deleted", JsonValue.Create(parse.GetValue(deleteName)), () => call.Out.WriteLine($"deleted role binding {parse.GetValue(deleteName)}"));
        }));
        return bindings;
    }

    public static Command CreateRoles(CliContext context)
    {
        var roles = new Command("roles", "Roles: named sets of verbs on resources.");
        roles.Subcommands.Add(Leaf(context, "list", "List the roles and their rules.", [], async (call, parse, ct) =>
        {
            var body = await call.SendAsync(HttpMethod.Get, "v1/roles", null, ct).ConfigureAwait(false);
            return call.Emit("roles", body, () => StatusCommand.WriteTable(call.Out, ["NAME", "RULES"],
                [.. Rows(body).Select(r => new[]
                {
                    Str(r["name"]),
                    string.Join("; ", (r["rules"] as JsonArray ?? []).OfType<JsonObject>().Select(rule => $"{Join(rule["verbs"])} on {Join(rule["resources"])}")),
                })]));
        }));
        return roles;
    }

    public static Command CreateCertificate(CliContext context)
    {
        var certificate = new Command("certificate", "Client certificates of the cluster CA for people (authenticate as user:NAME with groups).");
        var user = new Option<string>("--user") { Description = "The user name (the certificate's CN).", HelpName = "NAME", Required = true };
        var groups = new Option<string[]>("--group") { Description = "A group (the certificate's OU); repeat for more.", HelpName = "GROUP" };
        var outDir = new Option<string?>("--out-dir") { Description = "Where to write NAME.key, NAME.crt and ca.crt (default: the current directory).", HelpName = "DIR" };
        var ttl = new Option<string?>("--ttl") { Description = "How long the certificate is valid, e.g. 24h (default: the node's WarpGrid:Security:UserCertificateLifetime).", HelpName = "DURATION" };
        certificate.Subcommands.Add(Leaf(context, "request", "Generate an ECDSA P-256 key (mode 0600) and a CSR, have the node's CA sign it, and write NAME.key, NAME.crt and ca.crt.", [user, groups, outDir, ttl], async (call, parse, ct) =>
        {
            var name = parse.GetValue(user)!;
            if (name.Length == 0 || name.IndexOfAny(['/', '\\', '\0']) >= 0 || name is "." or ".." or "ca")
            {
                throw new CliFailure(ExitCodes.Usage, "usage", $"'{name}' cannot name the certificate's files", "pick a user name without '/', '\\' and other than 'ca'");
            }

            var directory = Path.GetFullPath(parse.GetValue(outDir) ?? ".");
            Directory.CreateDirectory(directory);
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest(new X500DistinguishedName("CN=" + name.Replace("\"", string.Empty, StringComparison.Ordinal)), key, HashAlgorithmName.SHA256);
            var body = new JsonObject
            {
                ["csr"] = request.CreateSigningRequestPem(),
                ["user"] = name,
                ["groups"] = new JsonArray([.. (parse.GetValue(groups) ?? []).Select(g => (JsonNode)JsonValue.Create(g))]),
            };
            if (parse.GetValue(ttl) is { } t)
            {
                body["ttl"] = t;
            }

            var signed = await call.SendAsync(HttpMethod.Post, "v1/certificates", body, ct).ConfigureAwait(false);
            var keyFile = Path.Combine(directory, name + ".key");
            var certFile = Path.Combine(directory, name + ".crt");
            var caFile = Path.Combine(directory, "ca.crt");
            await WritePrivateAsync(keyFile, key.ExportPkcs8PrivateKeyPem(), ct).ConfigureAwait(false);
            await File.WriteAllTextAsync(certFile, signed?["certificate"]?.ToString() ?? string.Empty, ct).ConfigureAwait(false);
            await File.WriteAllTextAsync(caFile, signed?["ca"]?.ToString() ?? string.Empty, ct).ConfigureAwait(false);
            var result = new JsonObject
            {
                ["subject"] = signed?["subject"]?.DeepClone(),
                ["serial"] = signed?["serial"]?.DeepClone(),
                ["notAfter"] = signed?["notAfter"]?.DeepClone(),
                ["key"] = keyFile,
                ["certificate"] = certFile,
                ["ca"] = caFile,
            };
            return call.Emit("certificate", result, () =>
            {
                call.Out.WriteLine($"wrote {keyFile} (mode 0600), {certFile} and {caFile}: {signed?["subject"]}, valid until {signed?["notAfter"]}");
                call.Out.WriteLine($"log in with: warp login --node URL --client-certificate {certFile} --client-key {keyFile} --ca-file {caFile}");
            });
        }));
        return certificate;
    }

    public static Command CreateAudit(CliContext context)
    {
        var since = new Option<string?>("--since") { Description = "How far back, e.g. 1h, or an ISO 8601 time (default: every record kept).", HelpName = "DURATION" };
        var identity = new Option<string?>("--identity") { Description = "Only this subject, e.g. serviceaccount:team-a:ci.", HelpName = "SUBJECT" };
        var ns = new Option<string?>("--namespace", "-n") { Description = "Only this namespace.", HelpName = "NAMESPACE" };
        var resource = new Option<string?>("--resource") { Description = "Only this resource, e.g. deployments.", HelpName = "RESOURCE" };
        var verb = new Option<string?>("--verb") { Description = "Only this verb, e.g. delete.", HelpName = "VERB" };
        var outcome = new Option<string?>("--outcome") { Description = "Only this outcome: allowed, denied, unauthenticated, failed.", HelpName = "OUTCOME" };
        var limit = new Option<int?>("--limit") { Description = "At most N records (1-10000, default 100).", HelpName = "N" };
        return Leaf(context, "audit", "Show the audit log: who did what to which resource, and whether it was allowed.", [since, identity, ns, resource, verb, outcome, limit], async (call, parse, ct) =>
        {
            var query = new List<string>();
            void Add(string name, string? value)
            {
                if (value is not null)
                {
                    query.Add(name + "=" + Uri.EscapeDataString(value));
                }
            }

            Add("since", parse.GetValue(since));
            Add("identity", parse.GetValue(identity));
            Add("namespace", parse.GetValue(ns));
            Add("resource", parse.GetValue(resource));
            Add("verb", parse.GetValue(verb));
            Add("outcome", parse.GetValue(outcome));
            Add("limit", parse.GetValue(limit)?.ToString(CultureInfo.InvariantCulture));
            var body = await call.SendAsync(HttpMethod.Get, "v1/audit" + (query.Count > 0 ? "?" + string.Join('&', query) : string.Empty), null, ct).ConfigureAwait(false);
            return call.Emit("records", body, () => StatusCommand.WriteTable(call.Out, ["TIME", "IDENTITY", "VERB", "RESOURCE", "NAME", "NAMESPACE", "OUTCOME", "STATUS"],
                [.. Rows(body).Select(r => new[]
                {
                    r["time"] is JsonValue v && v.TryGetValue<DateTimeOffset>(out var at) ? at.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) : Str(r["time"]),
                    Str(r["identity"]),
                    Str(r["verb"]),
                    Str(r["resource"]),
                    Dash(r["name"]),
                    Dash(r["namespace"]),
                    Str(r["outcome"]),
                    Str(r["status"]),
                })]));
        });
    }

    /// <summary>A command with the node options and <c>--json</c> whose body gets a <see cref="Call"/>.</summary>
    internal static Command Leaf(CliContext context, string name, string description, Symbol[] symbols, Func<Call, ParseResult, CancellationToken, Task<int>> body)
    {
        var command = new Command(name, description);
        foreach (var symbol in symbols)
        {
            switch (symbol)
            {
                case Argument argument:
                    command.Arguments.Add(argument);
                    break;
                case Option option:
                    command.Options.Add(option);
                    break;
            }
        }

        var node = CommandHelpers.NodeOptions();
        node.AddTo(command);
        var json = CommandHelpers.JsonOption();
        command.Options.Add(json);
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var call = new Call(context, node, parse, parse.GetValue(json));
            try
            {
                return await body(call, parse, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                call.Dispose();
            }
        });
        return command;
    }

    /// <summary>One command run: a lazily opened <see cref="NodeClient"/> and the output mode.</summary>
    internal sealed class Call(CliContext context, NodeOptions node, ParseResult parse, bool json) : IDisposable
    {
        private NodeClient? _client;

        public TextWriter Out => context.Out;

        public TextWriter Err => context.Err;

        public async Task<JsonNode?> SendAsync(HttpMethod method, string path, JsonNode? body, CancellationToken cancellationToken)
        {
            _client ??= node.Connect(context, parse);
            using var request = new HttpRequestMessage(method, path);
            if (body is not null)
            {
                request.Content = JsonContent.Create(body);
            }

            var (_, result) = await _client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            return result;
        }

        /// <summary>Writes <c>{"ok": true, key: result}</c> with <c>--json</c>, else runs <paramref name="human"/>.</summary>
        public int Emit(string key, JsonNode? result, Action human)
        {
            if (json)
            {
                context.WriteJson(new JsonObject { ["ok"] = true, [key] = result?.DeepClone() });
            }
            else
            {
                human();
            }

            return ExitCodes.Ok;
        }

        public void Dispose() => _client?.Dispose();
    }

    private static Option<bool> ClusterOption() => new("--cluster") { Description = "The cluster-wide bindings (instead of a namespace's)." };

    private static string Ns(CliContext context, ParseResult parse, Option<string?> option) => Uri.EscapeDataString(NodeOptions.Namespace(context, parse, option));

    private static string BindingsPath(CliContext context, ParseResult parse, Option<string?> ns, Option<bool> cluster)
    {
        if (parse.GetValue(cluster))
        {
            return parse.GetValue(ns) is null
                ? "v1/rolebindings"
                : throw new CliFailure(ExitCodes.Usage, "usage", "pass either --namespace or --cluster, not both", "a binding is either in one namespace or cluster-wide");
        }

        return $"v1/namespaces/{Ns(context, parse, ns)}/rolebindings";
    }

    private static async Task<string> ReadFileAsync(string path, string option, CancellationToken cancellationToken)
    {
        try
        {
            return await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliFailure(ExitCodes.Invalid, "not_found", $"cannot read {option} {path}: {ex.Message}", "pass a PEM public key file such as cosign.pub");
        }
    }

    private static async Task WritePrivateAsync(string path, string text, CancellationToken cancellationToken)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        await using var stream = new FileStream(path, options);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        await using var writer = new StreamWriter(stream);
        await writer.WriteAsync(text.AsMemory(), cancellationToken).ConfigureAwait(false);
    }

    private static IEnumerable<JsonObject> Rows(JsonNode? body) => (body as JsonArray)?.OfType<JsonObject>() ?? [];

    private static string Str(JsonNode? node) => node?.ToString() ?? string.Empty;

    private static string Dash(JsonNode? node) => node?.ToString() is { Length: > 0 } s ? s : "-";

    private static string Join(JsonNode? node) => node is JsonArray a && a.Count > 0 ? string.Join(",", a.Select(x => x?.ToString())) : "-";

    private static string Subjects(JsonNode? node) =>
        node is JsonArray a && a.Count > 0 ? string.Join(",", a.Select(s => s is JsonObject o ? $"{o["kind"]}:{o["name"]}" : s?.ToString())) : "-";

    private static string Usage(JsonNode? quota) =>
        quota is null ? "-" : $"{quota["used"]}/{(quota["limit"] is { } limit ? limit.ToString() : "-")}";
}
