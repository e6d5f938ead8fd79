using System.Diagnostics;
using WarpGrid.Core.Storage;
using Xunit.Abstractions;

namespace WarpGrid.Core.Tests.Storage;

public sealed class PerfProbeTemp(ITestOutputHelper output)
{
    [Fact]
    public async Task Measure()
    {
        using var dir = new TempDirectory();
        await using var store = new FileClusterStore(dir.Path);
        byte[] value = new byte[200];
        for (int i = 0; i < 200; i++) await store.PutAsync($"warm/{i}", value);
        var lat = new List<double>();
        for (int i = 0; i < 2000; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            await store.PutAsync($"single/{i % 100}", value);
            lat.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
        }
        lat.Sort();
        output.WriteLine($"single writer: p50 {lat[1000]:F0} us, p99 {lat[1980]:F0} us, mean {lat.Average():F0} us");

        foreach (int writers in new[] { 1, 8, 64, 256 })
        {
            long f0 = store.FlushCount;
            int each = writers == 1 ? 2000 : 20000 / writers * (writers >= 64 ? 2 : 1);
            var sw = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
            {
                for (int i = 0; i < each; i++) await store.PutAsync($"c/{w}/{i % 50}", value);
            })));
            sw.Stop();
            long total = (long)writers * each;
            output.WriteLine($"{writers} writers: {total} puts in {sw.ElapsedMilliseconds} ms = {total / sw.Elapsed.TotalSeconds:F0} puts/s, {store.FlushCount - f0} fsyncs ({(double)total / (store.FlushCount - f0):F1} writes/fsync)");
        }

        var sw2 = Stopwatch.StartNew();
        for (int i = 0; i < 100000; i++) await store.GetAsync($"c/1/{i % 50}");
        output.WriteLine($"get: {sw2.Elapsed.TotalMicroseconds / 100000:F2} us");
        var sw3 = Stopwatch.StartNew();
        await store.CompactAsync();
        output.WriteLine($"compact: {sw3.ElapsedMilliseconds} ms, keys {(await store.ListAsync("")).Count}");
    }

    [Fact]
    public async Task MeasureReplay()
    {
        using var dir = new TempDirectory();
        byte[] value = new byte[200];
        await using (var store = new FileClusterStore(dir.Path))
        {
            await Task.WhenAll(Enumerable.Range(0, 64).Select(w => Task.Run(async () =>
            {
                for (int i = 0; i < 2000; i++) await store.PutAsync($"r/{w}/{i}", value);
            })));
        }
        long len = new FileInfo(dir.LogFile).Length;
        var sw = Stopwatch.StartNew();
        await using (var store = new FileClusterStore(dir.Path))
        {
            output.WriteLine($"replay of {len / 1024 / 1024.0:F1} MiB log ({store.Revision} writes): {sw.ElapsedMilliseconds} ms");
        }
    }
}
