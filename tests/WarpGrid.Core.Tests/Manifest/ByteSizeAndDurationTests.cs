using WarpGrid.Core.Manifest;

namespace WarpGrid.Core.Tests.Manifest;

public class ByteSizeTests
{
    [Theory]
    [InlineData("0B", 0L)]
    [InlineData("512B", 512L)]
    [InlineData("1KB", 1024L)]
    [InlineData("1KiB", 1024L)]
    [InlineData("64 KiB", 65536L)]
    [InlineData("128MB", 134217728L)]
    [InlineData("128mb", 134217728L)]
    [InlineData("128MiB", 134217728L)]
    [InlineData("1.5GB", 1610612736L)]
    [InlineData("4GiB", 4294967296L)]
    [InlineData(" 2 gb ", 2147483648L)]
    [InlineData("0.5KB", 512L)]
    public void TryParse_AcceptsBinaryUnits(string text, long expected)
    {
        Assert.True(ByteSize.TryParse(text, out var bytes, out var error), error);
        Assert.Null(error);
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("12XB", "unknown unit 'XB' in \"12XB\"; allowed units: B, KB, KiB, MB, MiB, GB, GiB")]
    [InlineData("128", "missing unit in \"128\"")]
    [InlineData("", "empty byte size")]
    [InlineData("MB", "invalid byte size \"MB\"")]
    [InlineData("-1MB", "must not be negative")]
    [InlineData("1.B", "invalid byte size")]
    [InlineData("0.3KB", "is not a whole number of bytes")]
    [InlineData("99999999999999999999GB", "too large")]
    [InlineData("1TB", "unknown unit 'TB'")]
    public void TryParse_RejectsWithHelpfulMessage(string text, string phrase)
    {
        Assert.False(ByteSize.TryParse(text, out var bytes, out var error));
        Assert.Equal(0, bytes);
        Assert.Contains(phrase, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0L, "0B")]
    [InlineData(1000L, "1000B")]
    [InlineData(1024L, "1KiB")]
    [InlineData(1536L, "1.5KiB")]
    [InlineData(134217728L, "128MiB")]
    [InlineData(1610612736L, "1.5GiB")]
    [InlineData(4294967296L, "4GiB")]
    [InlineData(1025L, "1025B")]
    public void Format_UsesLargestExactBinaryUnit(long bytes, string expected)
    {
        Assert.Equal(expected, ByteSize.Format(bytes));
        Assert.True(ByteSize.TryParse(expected, out var back, out _));
        Assert.Equal(bytes, back);
    }

    [Fact]
    public void Format_RoundTripsArbitraryValues()
    {
        foreach (var bytes in new[] { 1L, 65537L, 123456789L, 5_000_000_000L, long.MaxValue })
        {
            Assert.True(ByteSize.TryParse(ByteSize.Format(bytes), out var back, out var error), error);
            Assert.Equal(bytes, back);
        }
    }

    [Fact]
    public void Arguments_AreChecked()
    {
        Assert.Throws<ArgumentNullException>(() => ByteSize.TryParse(null!, out _, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => ByteSize.Format(-1));
    }
}

public class DurationParserTests
{
    [Theory]
    [InlineData("500ms", 0, 0, 0, 500)]
    [InlineData("30s", 0, 0, 30, 0)]
    [InlineData("5m", 0, 5, 0, 0)]
    [InlineData("1h", 1, 0, 0, 0)]
    [InlineData("1m30s", 0, 1, 30, 0)]
    [InlineData("1h2m3s4ms", 1, 2, 3, 4)]
    [InlineData("1h 30m", 1, 30, 0, 0)]
    [InlineData("0s", 0, 0, 0, 0)]
    [InlineData("0", 0, 0, 0, 0)]
    [InlineData("1.5s", 0, 0, 1, 500)]
    [InlineData("90m", 1, 30, 0, 0)]
    public void TryParse_Accepts(string text, int h, int m, int s, int ms)
    {
        Assert.True(DurationParser.TryParse(text, out var value, out var error), error);
        Assert.Null(error);
        Assert.Equal(new TimeSpan(0, h, m, s, ms), value);
    }

    [Theory]
    [InlineData("5 parsecs", "unknown unit 'parsecs' in \"5 parsecs\"; allowed units: ms (milliseconds), s (seconds), m (minutes), h (hours)")]
    [InlineData("30", "missing unit after 30")]
    [InlineData("", "empty duration")]
    [InlineData("s", "invalid duration \"s\"")]
    [InlineData("-5s", "must not be negative")]
    [InlineData("30s1m", "each unit may appear once, in decreasing order")]
    [InlineData("1s1s", "each unit may appear once")]
    [InlineData("30S", "unknown unit 'S'")]
    [InlineData("1d", "unknown unit 'd'")]
    [InlineData("0.00001ms", "more precise than 100 nanoseconds")]
    [InlineData("99999999999999999h", "too large")]
    [InlineData("1..5s", "invalid duration")]
    public void TryParse_RejectsWithHelpfulMessage(string text, string phrase)
    {
        Assert.False(DurationParser.TryParse(text, out var value, out var error));
        Assert.Equal(TimeSpan.Zero, value);
        Assert.Contains(phrase, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(500 * TimeSpan.TicksPerMillisecond, "500ms")]
    [InlineData(90 * TimeSpan.TicksPerSecond, "1m30s")]
    [InlineData(TimeSpan.TicksPerHour, "1h")]
    [InlineData(48 * TimeSpan.TicksPerHour, "48h")]
    [InlineData(TimeSpan.TicksPerHour + TimeSpan.TicksPerSecond + 5 * TimeSpan.TicksPerMillisecond, "1h1s5ms")]
    [InlineData(15_000L, "1.5ms")]
    public void Format_IsCanonical_AndRoundTrips(long ticks, string expected)
    {
        var value = TimeSpan.FromTicks(ticks);

        Assert.Equal(expected, DurationParser.Format(value));
        Assert.True(DurationParser.TryParse(expected, out var back, out var error), error);
        Assert.Equal(value, back);
    }

    [Fact]
    public void Format_RoundTripsExtremes()
    {
        foreach (var value in new[] { TimeSpan.FromTicks(1), TimeSpan.MaxValue, TimeSpan.FromDays(3) + TimeSpan.FromTicks(12345) })
        {
            Assert.True(DurationParser.TryParse(DurationParser.Format(value), out var back, out var error), error);
            Assert.Equal(value, back);
        }
    }

    [Fact]
    public void Arguments_AreChecked()
    {
        Assert.Throws<ArgumentNullException>(() => DurationParser.TryParse(null!, out _, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => DurationParser.Format(TimeSpan.FromSeconds(-1)));
    }
}
