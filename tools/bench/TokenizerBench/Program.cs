// Tokenizer throughput: encodes and decodes a corpus on one thread (and, with --threads N, on N threads),
// and reports the median of several runs in MB/s of UTF-8 input and tokens/s.
// Usage: dotnet run -c Release --project tools/bench/TokenizerBench -- CORPUS [--runs 5] [--threads N]
using System.Diagnostics;
using System.Text;
using Gpt2Engine.Tokenization;

if (args.Length == 0 || args[0].StartsWith('-'))
{
    Console.Error.WriteLine("usage: TokenizerBench CORPUS [--runs N] [--threads N]   (make a corpus with tools/bench/make-corpus.sh)");
    return 2;
}
int runs = OptionValue("--runs", 5), threads = OptionValue("--threads", 1);
string text = File.ReadAllText(args[0]);
double megabytes = Encoding.UTF8.GetByteCount(text) / 1e6;

var load = Stopwatch.StartNew();
var loadCpu = Process.GetCurrentProcess().TotalProcessorTime;
var tokenizer = Gpt2Tokenizer.Default;
Console.WriteLine($"built-in vocabulary loaded in {load.Elapsed.TotalMilliseconds:F0} ms wall, "
    + $"{(Process.GetCurrentProcess().TotalProcessorTime - loadCpu).TotalMilliseconds:F0} ms cpu (first use in the process)");
Console.WriteLine($"corpus: {args[0]}, {megabytes:F1} MB, {text.Length:N0} chars; {runs} runs, median");

int[] ids = tokenizer.Encode(text);
Report("encode, 1 thread", Median(() => tokenizer.Encode(text)), ids.Length);
if (threads > 1)
    Report($"encode, {threads} threads", Median(() => EncodeParallel(text, threads)), ids.Length);
Report("decode, 1 thread", Median(() => tokenizer.Decode(ids)), ids.Length);
return 0;

// On a shared machine wall time includes waiting for a core; the process's CPU time does not, so both are shown.
void Report(string what, (double Wall, double Cpu) seconds, int tokens) =>
    Console.WriteLine($"{what,-18} wall: {megabytes / seconds.Wall,6:F1} MB/s {tokens / seconds.Wall / 1e6,6:F2} M tokens/s"
        + $"   cpu: {megabytes / seconds.Cpu,6:F1} MB/s {tokens / seconds.Cpu / 1e6,6:F2} M tokens/s");

(double Wall, double Cpu) Median(Action action)
{
    var wall = new List<double>();
    var cpu = new List<double>();
    var process = Process.GetCurrentProcess();
    for (int i = 0; i < runs; i++)
    {
        process.Refresh();
        var cpuStart = process.TotalProcessorTime;
        var stopwatch = Stopwatch.StartNew();
        action();
        wall.Add(stopwatch.Elapsed.TotalSeconds);
        process.Refresh();
        cpu.Add((process.TotalProcessorTime - cpuStart).TotalSeconds);
    }
    wall.Sort();
    cpu.Sort();
    return (wall[runs / 2], cpu[runs / 2]);
}

int OptionValue(string name, int fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1]) : fallback;
}

static int[] EncodeParallel(string text, int threads) => Gpt2Tokenizer.Default.EncodeParallel(text, threads);
