using WarpGrid.Core.Clustering;
using WarpGrid.Core.Tests.Storage;

namespace WarpGrid.Core.Tests.Clustering;

public sealed class SecretFilesTests : IDisposable
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private string Secret(UnixFileMode mode)
    {
        var path = System.IO.Path.Combine(_dir.Path, "secret-" + Guid.NewGuid().ToString("N"));
        File.WriteAllText(path, "0123456789abcdef0123456789abcdef");
        File.SetUnixFileMode(path, mode);
        return path;
    }

    [Theory]
    [InlineData(OwnerReadWrite)]
    [InlineData(UnixFileMode.UserRead)]
    [InlineData(OwnerReadWrite | UnixFileMode.UserExecute)]
    public void A_file_only_its_owner_can_use_passes(UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        Assert.Null(SecretFiles.Check(Secret(mode), "the test secret"));
    }

    [Theory]
    [InlineData(OwnerReadWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, "0644")]
    [InlineData(OwnerReadWrite | UnixFileMode.GroupRead, "0640")]
    [InlineData(OwnerReadWrite | UnixFileMode.OtherRead, "0604")]
    [InlineData(OwnerReadWrite | UnixFileMode.GroupWrite, "0620")]
    [InlineData(OwnerReadWrite | UnixFileMode.OtherExecute, "0601")]
    public void A_file_with_group_or_other_bits_is_refused_with_the_exact_fix(UnixFileMode mode, string octal)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var path = Secret(mode);
        var message = SecretFiles.Check(path, "the test secret");

        Assert.NotNull(message);
        Assert.StartsWith($"the test secret '{path}'", message);
        Assert.Contains($"(mode {octal})", message);
        Assert.EndsWith($"chmod 600 {path}", message);

        File.SetUnixFileMode(path, OwnerReadWrite); // the fix it names works
        Assert.Null(SecretFiles.Check(path, "the test secret"));
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var path = System.IO.Path.Combine(_dir.Path, "absent");
        var ex = Assert.Throws<FileNotFoundException>(() => SecretFiles.Check(path, "the test secret"));
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void A_cluster_CA_key_readable_by_others_is_refused_at_load()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "test").Authority.Dispose();
        var key = System.IO.Path.Combine(_dir.Path, ClusterCertificateAuthority.KeyFile);
        File.SetUnixFileMode(key, OwnerReadWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var ex = Assert.Throws<InvalidDataException>(() => ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "test"));
        Assert.Contains("the cluster CA key", ex.Message);
        Assert.EndsWith($"chmod 600 {key}", ex.Message);

        File.SetUnixFileMode(key, OwnerReadWrite);
        var (again, created) = ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "test");
        using (again)
        {
            Assert.False(created);
        }
    }
}
