package cli

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Help laid out like docker's: "Usage:  berth ps [OPTIONS]", the description,
// aliases, options, then the command groups, and "Global Options" at the root.
const usageTemplate = `Usage:  {{if not .HasSubCommands}}{{usageLine .}}{{end}}{{if .HasSubCommands}}{{ .CommandPath}}{{if .HasAvailableFlags}} [OPTIONS]{{end}} COMMAND{{end}}
{{if ne .Long ""}}
{{ .Long | trim }}{{else if ne .Short ""}}
{{ .Short | trim }}{{end}}
{{- if gt .Aliases 0}}

Aliases:
  {{aliases .}}
{{- end}}
{{- if .HasExample}}

Examples:
{{ .Example }}
{{- end}}
{{- if .HasParent}}{{if .HasAvailableLocalFlags}}

Options:
{{ wrappedFlags . }}
{{- end}}{{end}}
{{- range $g := commandGroups .}}

{{ $g.Title }}
{{- range $g.Commands}}
  {{rpad .Name .NamePadding }} {{.Short}}
{{- end}}
{{- end}}
{{- if not .HasParent}}

Global Options:
{{ globalFlags . }}
{{- end}}
{{- if .HasSubCommands }}

Run '{{.CommandPath}} COMMAND --help' for more information on a command.
{{- end}}
`

type cmdGroup struct {
	Title    string
	Commands []*cobra.Command
}

func setHelpTemplates(root *cobra.Command) {
	cobra.AddTemplateFunc("usageLine", usageLine)
	cobra.AddTemplateFunc("aliases", func(cmd *cobra.Command) string {
		var out []string
		parent := ""
		if cmd.HasParent() {
			parent = cmd.Parent().CommandPath() + " "
		}
		for _, a := range append([]string{cmd.Name()}, cmd.Aliases...) {
			out = append(out, parent+a)
		}
		return strings.Join(out, ", ")
	})
	cobra.AddTemplateFunc("wrappedFlags", func(cmd *cobra.Command) string {
		return strings.TrimRight(cmd.LocalFlags().FlagUsagesWrapped(80), "\n")
	})
	cobra.AddTemplateFunc("globalFlags", func(cmd *cobra.Command) string {
		fs := pflag.NewFlagSet("global", pflag.ContinueOnError)
		fs.AddFlagSet(cmd.LocalFlags())
		return strings.TrimRight(fs.FlagUsagesWrapped(80), "\n")
	})
	cobra.AddTemplateFunc("commandGroups", func(cmd *cobra.Command) []cmdGroup {
		var groups []cmdGroup
		byID := map[string]int{}
		for _, g := range cmd.Groups() {
			byID[g.ID] = len(groups)
			groups = append(groups, cmdGroup{Title: g.Title})
		}
		var rest []*cobra.Command
		for _, sub := range cmd.Commands() {
			if !sub.IsAvailableCommand() || sub.Name() == "help" {
				continue
			}
			if i, ok := byID[sub.GroupID]; ok {
				groups[i].Commands = append(groups[i].Commands, sub)
			} else {
				rest = append(rest, sub)
			}
		}
		if len(rest) > 0 {
			sort.Slice(rest, func(i, j int) bool { return rest[i].Name() < rest[j].Name() })
			groups = append(groups, cmdGroup{Title: "Commands:", Commands: rest})
		}
		out := groups[:0]
		for _, g := range groups {
			if len(g.Commands) > 0 {
				out = append(out, g)
			}
		}
		return out
	})
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate("{{.UsageString}}")
}
