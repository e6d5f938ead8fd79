using System.Diagnostics;
using WarpGrid.Core.Oci;
using Xunit.Abstractions;

namespace WarpGrid.Core.Tests.Oci;

/// <summary>
/// Measures push and pull of a 20 MiB blob against the local registry with the client and with curl in the same run,
/// and prints the figures (run with <c>--logger "console;verbosity=detailed"</c> to see them). Only correctness is
/// asserted: the machine is shared, so speeds are reported, not enforced.
/// </summary>
[Trait("Category", "Measurement")]
public sealed class OciThroughputTests(AnonymousRegistryFixture fixture, ITestOutputHelper output) : IClassFixture<AnonymousRegistryFixture>
{
    private const int Size = 20 * 1024 * 1024;
    private const int Rounds = 3;

    [Fact]
    public async Task Push_and_pull_20_MiB_client_vs_curl()
    {
        string address = fixture.Server.Address;
        OciRepository repository = OciRepository.Parse($"{address}/{OciTestSupport.UniqueRepository("throughput")}");
        string? curl = RegistryServer.FindOnPath("curl");
        string work = Path.Combine(Path.GetTempPath(), "warpgrid-throughput-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        var results = new Dictionary<string, List<double>>();
        void Record(string name, TimeSpan elapsed) =>
            (results.TryGetValue(name, out List<double>? list) ? list : results[name] = []).Add(Size / 1048576.0 / elapsed.TotalSeconds);

        try
        {
            using OciRegistryClient client = OciTestSupport.Client();
            await client.PushBlobAsync(repository, OciTestSupport.RandomBytes(1024)); // warm up connection and JIT
            for (int round = 0; round < Rounds; round++)
            {
                byte[] a = OciTestSupport.RandomBytes(Size);
                var clock = Stopwatch.StartNew();
                OciBlobPushResult mono = await client.PushBlobAsync(repository, a, mode: OciUploadMode.Monolithic);
                Record("client push (monolithic PUT)", clock.Elapsed);

                byte[] b = OciTestSupport.RandomBytes(Size);
                clock.Restart();
                OciBlobPushResult chunked = await client.PushBlobAsync(repository, b, mode: OciUploadMode.Chunked);
                Record($"client push (chunked, {client.Options.UploadChunkSize / 1048576} MiB PATCHes)", clock.Elapsed);

                clock.Restart();
                byte[] pulled = await client.PullBlobBytesAsync(repository, mono.Digest, Size);
                Record("client pull to memory (verified)", clock.Elapsed);
                Assert.Equal(a, pulled);

                string file = Path.Combine(work, "client.bin");
                clock.Restart();
                await client.PullBlobToFileAsync(repository, chunked.Digest, file);
                Record("client pull to file (verified, fsync + rename)", clock.Elapsed);
                Assert.Equal(chunked.Digest, OciDigest.Compute(File.ReadAllBytes(file)));

                if (curl is not null)
                {
                    byte[] c = OciTestSupport.RandomBytes(Size);
                    string source = Path.Combine(work, "curl-source.bin");
                    await File.WriteAllBytesAsync(source, c);
                    string digest = OciDigest.Compute(c);
                    clock.Restart();
                    string headers = await RunAsync(curl, "-sS", "-X", "POST", "-D", "-", "-o", "/dev/null", $"http://{address}/v2/{repository.Name}/blobs/uploads/");
                    string location = headers.Split('\n').First(l => l.StartsWith("Location:", StringComparison.OrdinalIgnoreCase))["Location:".Length..].Trim();
                    await RunAsync(curl, "-sS", "-f", "-X", "PUT", "-H", "Content-Type: application/octet-stream", "-T", source, "-o", "/dev/null", $"{location}&digest={digest}");
                    Record("curl push (POST + PUT -T file)", clock.Elapsed);
                    Assert.True(await client.BlobExistsAsync(repository, digest));

                    string target = Path.Combine(work, "curl.bin");
                    clock.Restart();
                    await RunAsync(curl, "-sS", "-f", "-o", target, $"http://{address}/v2/{repository.Name}/blobs/{mono.Digest}");
                    Record("curl pull to file (no verification)", clock.Elapsed);
                    Assert.Equal(Size, new FileInfo(target).Length);
                }
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        output.WriteLine($"20 MiB blob, local registry {address}, {Rounds} rounds (MiB/s: best / median){(curl is null ? "; curl not installed, no curl figures" : "; curl times include starting the process")}");
        foreach ((string name, List<double> speeds) in results)
        {
            speeds.Sort();
            output.WriteLine($"  {name,-50} {speeds[^1],7:0} / {speeds[speeds.Count / 2],7:0}");
        }
    }

    private static async Task<string> RunAsync(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(psi)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)} exited {process.ExitCode}: {stderr}");
        return await stdout;
    }
}
