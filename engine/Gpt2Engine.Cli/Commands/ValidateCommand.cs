using System.CommandLine;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Model;
using Gpt2Engine.Validation;

namespace Gpt2Engine.Cli.Commands;

internal static class ValidateCommand
{
    private static readonly Option<string> Weights = new("--weights") { Description = "Weights: a size name, a directory or a .safetensors file", Required = true };
    private static readonly Option<FileInfo> Reference = new("--reference") { Description = "Reference outputs (.safetensors with tokens, logits, loss, prompt, greedy, greedy_logits...)", Required = true };
    private static readonly Option<double?> Tolerance = new("--tolerance") { Description = "Override every check's tolerance (default 2e-5: fp32 on the CPU)" };
    private static readonly Option<string> Device = new("--device") { Description = BackendFactory.Help + "; CUDA with TF32 or bf16 needs a looser --tolerance", DefaultValueFactory = _ => "cpu" };
    private static readonly Option<int> Threads = new("--threads") { Description = "CPU threads (0 = all cores)", DefaultValueFactory = _ => 0 };

    public static Command Create()
    {
        var command = new Command("validate", "Check the engine against reference outputs.");
        foreach (var option in new Option[] { Weights, Reference, Tolerance, Device, Threads })
            command.Options.Add(option);
        command.SetAction(new Func<ParseResult, int>(Run));
        return command;
    }

    private static int Run(ParseResult parse)
    {
        var output = parse.InvocationConfiguration.Output;
        using var weights = CheckpointLoader.Load(parse.GetValue(Weights)!);
        using var backend = BackendFactory.Create(parse.GetValue(Device)!, parse.InvocationConfiguration.Error, parse.GetValue(Threads));
        var report = ReferenceValidator.Validate(weights, backend, parse.GetValue(Reference)!.FullName, parse.GetValue(Tolerance));
        output.WriteLine($"{weights.Source} on {backend.Name}");
        foreach (var result in report.Results) output.WriteLine(result);
        if (report.Results.Count == 0) output.WriteLine("nothing checked: the reference has none of the groups this engine knows");
        if (report.NotChecked.Count > 0) output.WriteLine($"not checked: {string.Join(", ", report.NotChecked)}");
        if (report.Results.Count > 0 && report.Passed) return 0;
        parse.InvocationConfiguration.Error.WriteLine($"gpt2-engine: validation failed{(report.Results.Count == 0 ? "" : ": " + string.Join(", ", report.Results.Where(r => !r.Passed).Select(r => r.Name)))}");
        return 1;
    }
}
