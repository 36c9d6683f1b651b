using System.CommandLine;
using System.Globalization;
using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Cli.Commands;

internal static class InspectCommand
{
    public static Command Create()
    {
        var weights = new Option<string>("--weights") { Description = "A model size (124M...), a checkpoint directory or a .safetensors file", Required = true };
        var verify = new Option<bool>("--verify") { Description = "Check every tensor's crc32c (TensorFlow bundles)" };
        var command = new Command("inspect", "Describe a checkpoint: format, hyperparameters, tensors.");
        command.Options.Add(weights);
        command.Options.Add(verify);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var report = CheckpointInspector.Inspect(parse.GetValue(weights)!, parse.GetValue(verify), parse.InvocationConfiguration.Error);
            Print(report, output);
            if (report.ChecksumFailures > 0)
                throw new Gpt2Exception($"{report.Source}: {report.ChecksumFailures} tensor(s) failed crc32c verification; the data file is corrupt");
            return 0;
        }));
        return command;
    }

    private static void Print(CheckpointReport report, TextWriter output)
    {
        var c = report.Config;
        string Number(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
        output.WriteLine($"format      {(report.Format == Checkpoints.CheckpointFormat.TensorFlowBundle ? "OpenAI TensorFlow bundle" : "safetensors")}");
        output.WriteLine($"source      {report.Source}");
        output.WriteLine($"config      {c}");
        output.WriteLine($"parameters  {Number(report.ParameterCount)} ({Number(report.ParameterCount * 4)} bytes as float32)");
        output.WriteLine($"tensors     {report.Tensors.Count} stored, {Number(report.Tensors.Sum(t => t.Bytes))} bytes");
        bool checksums = report.Tensors.Any(t => t.Checksum is not null);
        int nameWidth = report.Tensors.Max(t => t.Name.Length), shapeWidth = report.Tensors.Max(t => t.Shape.Length);
        output.WriteLine();
        output.WriteLine($"{"name".PadRight(nameWidth)}  {"shape".PadRight(shapeWidth)}  {"dtype",-8}  {"bytes",13}{(checksums ? "  crc32c" : "")}");
        foreach (var t in report.Tensors)
            output.WriteLine($"{t.Name.PadRight(nameWidth)}  {t.Shape.PadRight(shapeWidth)}  {t.DType,-8}  {Number(t.Bytes),13}{(t.Checksum is null ? "" : "  " + t.Checksum)}");
        if (report.ChecksumNote is not null)
        {
            output.WriteLine();
            output.WriteLine(checksums ? $"{report.ChecksumNote}: {report.Tensors.Count - report.ChecksumFailures} ok, {report.ChecksumFailures} failed" : report.ChecksumNote);
        }
    }
}
