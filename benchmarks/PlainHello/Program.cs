// Plain ASP.NET Core baseline for scripts/bench.sh: GET /hello answers "Hello from WarpGrid!\n" as text/plain, the
// same bytes samples/hello returns through warpd. Bind with --urls http://127.0.0.1:<port>.
var builder = WebApplication.CreateBuilder(args);

// No appsettings.json here: without it the default minimum level is Information, and Kestrel's per-request
// "Request starting/finished" logs would make the baseline measure the console logger.
builder.Logging.SetMinimumLevel(LogLevel.Warning);

var app = builder.Build();
app.MapGet("/hello", () => Results.Text("Hello from WarpGrid!\n", "text/plain"));
app.Run();
